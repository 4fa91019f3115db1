locals {
  # Same probe as the Dockerfile's HEALTHCHECK (ECS ignores the image's): no curl in the image, so python's
  # urllib, which exits non-zero on a refused connection, a timeout or an HTTP error (503 while draining or
  # while the Socket Mode connection is down).
  health_probe = "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('ECS_EXEC_BOT_PORT') or os.environ.get('PORT') or '3000'), timeout=4)"

  # Writes the bot's YAML into the shared volume before the bot starts. It runs the bot's own image (no
  # extra image to trust) with its entrypoint replaced.
  write_config = "import os, pathlib; pathlib.Path('${local.config_path}').write_text(os.environ['ECS_EXEC_BOT_CONFIG_YAML'])"

  # Names from bot/config.py `Settings` (validation aliases).
  bot_environment = merge(
    {
      AWS_REGION                  = local.region
      PORT                        = tostring(var.port)
      ECS_EXEC_BOT_CONFIG         = local.config_path
      ECS_EXEC_BOT_STORE          = "dynamodb"
      ECS_EXEC_BOT_DYNAMODB_TABLE = aws_dynamodb_table.state.name
      ECS_EXEC_BOT_LOG_LEVEL      = var.log_level
    },
    var.audit_channel == null ? {} : { ECS_EXEC_BOT_AUDIT_CHANNEL = var.audit_channel },
    var.extra_environment,
  )

  log_configuration = {
    logDriver = "awslogs"
    options = {
      "awslogs-group"         = aws_cloudwatch_log_group.bot.name
      "awslogs-region"        = local.region
      "awslogs-stream-prefix" = var.name
    }
  }

  container_definitions = [
    {
      name                   = "config"
      image                  = var.image
      essential              = false
      user                   = local.container_user
      readonlyRootFilesystem = true
      entryPoint             = ["python", "-c"]
      command                = [local.write_config]
      environment            = [{ name = "ECS_EXEC_BOT_CONFIG_YAML", value = local.bot_config_yaml }]
      mountPoints            = [{ sourceVolume = "config", containerPath = local.config_dir, readOnly = false }]
      logConfiguration       = local.log_configuration
    },
    {
      name                   = "bot"
      image                  = var.image
      essential              = true
      user                   = local.container_user
      readonlyRootFilesystem = true
      command                = ["serve"]
      portMappings           = [{ containerPort = var.port, protocol = "tcp" }]
      environment            = [for k in sort(keys(local.bot_environment)) : { name = k, value = local.bot_environment[k] }]
      secrets                = [for k in local.slack_secret_keys : { name = k, valueFrom = "${local.slack_secret_arn}:${k}::" }]
      mountPoints = [
        { sourceVolume = "config", containerPath = local.config_dir, readOnly = true },
        { sourceVolume = "data", containerPath = "/data", readOnly = false },
      ]
      dependsOn = [{ containerName = "config", condition = "SUCCESS" }]
      healthCheck = {
        command     = ["CMD", "python", "-c", local.health_probe]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      # SIGTERM starts the drain (finish or cancel running commands, tell their users); Fargate's maximum.
      stopTimeout      = 120
      logConfiguration = local.log_configuration
    },
  ]
}

resource "aws_ecs_task_definition" "bot" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.container_definitions)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Task-local scratch volumes (Fargate ephemeral storage) for the only writable paths; the image declares
  # both as VOLUMEs owned by UID 10001, and ECS copies that ownership into the fresh volume.
  volume {
    name = "config"
  }

  volume {
    name = "data"
  }

  lifecycle {
    # Without the repository ARN the execution role has no ECR permissions and every task fails to pull.
    precondition {
      condition     = var.ecr_repository_arn != null || !can(regex("\\.dkr\\.ecr\\.", var.image))
      error_message = "The image is in ECR: set ecr_repository_arn so the execution role may pull it."
    }
  }

  tags = local.tags
}

resource "aws_ecs_service" "bot" {
  name                               = var.name
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.bot.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  enable_execute_command             = false # nobody needs a shell in the bot itself
  deployment_minimum_healthy_percent = 100   # keep every Socket Mode connection up during a deploy
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = var.target_group_arn == null ? null : 60

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.bot.id]
    assign_public_ip = var.assign_public_ip
  }

  dynamic "load_balancer" {
    for_each = var.target_group_arn == null ? [] : [1]
    content {
      target_group_arn = var.target_group_arn
      container_name   = "bot"
      container_port   = var.port
    }
  }

  lifecycle {
    # Slack allows 10 Socket Mode connections per app; a deployment runs up to 2x desired_count tasks.
    precondition {
      condition     = var.slack_mode != "socket" || var.desired_count * 2 <= 10
      error_message = "In Socket Mode keep desired_count <= 5: Slack allows 10 connections per app and a rolling deployment doubles the tasks."
    }

    precondition {
      condition     = var.slack_mode != "http" || var.target_group_arn != null
      error_message = "HTTP mode needs target_group_arn (an ALB target group with health check path /healthz) so Slack can reach the bot."
    }
  }

  tags = local.tags
}
