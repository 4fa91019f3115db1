# Both modules wired together: one cluster whose ECS Exec sessions are KMS-encrypted and logged to
# CloudWatch, one nginx target service prepared for exec, and the bot (Socket Mode, two replicas) allowed to
# exec only into tagged tasks' `nginx` containers of that cluster.
#
#   terraform init && terraform apply -var vpc_id=... -var 'private_subnet_ids=["subnet-..."]' -var bot_image=...
#   then fill the Slack secret (output slack_secret_arn) as docs/deploy.md shows.

data "aws_caller_identity" "current" {}

locals {
  account = data.aws_caller_identity.current.account_id
}

# ---- ECS Exec session encryption and logging --------------------------------------------------------

data "aws_iam_policy_document" "exec_key" {
  # A key policy: "*" is this key, and account-root administration is AWS's default key policy.
  #checkov:skip=CKV_AWS_111:key policy; Resource "*" means this key only
  #checkov:skip=CKV_AWS_356:key policy; Resource "*" means this key only
  #checkov:skip=CKV_AWS_109:key policy; the account keeps administering its own key
  statement {
    sid       = "AccountAdministersKey"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${local.account}:root"]
    }
  }

  # CloudWatch Logs encrypts the session log group with this key too.
  statement {
    sid       = "CloudWatchLogsUsesKey"
    effect    = "Allow"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:aws:logs:${var.region}:${local.account}:log-group:/ecs-exec/*",
        "arn:aws:logs:${var.region}:${local.account}:log-group:/ecs/example-web",
      ]
    }
  }
}

resource "aws_kms_key" "exec" {
  description         = "ECS Exec session encryption and session logs"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.exec_key.json
}

resource "aws_cloudwatch_log_group" "exec_sessions" {
  name              = "/ecs-exec/sessions"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.exec.arn
}

resource "aws_ecs_cluster" "main" {
  name = "example"

  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.exec.arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.exec_sessions.name
      }
    }
  }

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

# ---- a target service -------------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "web_task" {
  name               = "example-web-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

resource "aws_iam_role" "web_execution" {
  name               = "example-web-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

resource "aws_iam_role_policy_attachment" "web_execution" {
  role       = aws_iam_role.web_execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_cloudwatch_log_group" "web" {
  name              = "/ecs/example-web"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.exec.arn
}

resource "aws_ecs_task_definition" "web" {
  #checkov:skip=CKV_AWS_336:stock nginx writes to /var/cache/nginx; a real service would mount volumes and set readonlyRootFilesystem
  family                   = "example-web"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  task_role_arn            = aws_iam_role.web_task.arn
  execution_role_arn       = aws_iam_role.web_execution.arn

  container_definitions = jsonencode([
    {
      name         = "nginx"
      image        = "public.ecr.aws/nginx/nginx:1.27"
      essential    = true
      portMappings = [{ containerPort = 80, protocol = "tcp" }]
      # The init process reaps what ECS Exec starts (module.web.exec_linux_parameters).
      linuxParameters = module.web.exec_linux_parameters
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.web.name
          "awslogs-region"        = var.region
          "awslogs-stream-prefix" = "web"
        }
      }
    },
  ])
}

resource "aws_security_group" "web" {
  name_prefix = "example-web-"
  description = "example web tasks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "web_https" {
  security_group_id = aws_security_group.web.id
  description       = "SSM agent to ssmmessages, image pulls"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

module "web" {
  source = "../../target-service"

  name                = "web-nginx"
  cluster_arn         = aws_ecs_cluster.main.arn
  task_definition_arn = aws_ecs_task_definition.web.arn
  task_role_name      = aws_iam_role.web_task.name
  subnet_ids          = var.private_subnet_ids
  security_group_ids  = [aws_security_group.web.id]
  exec_kms_key_arn    = aws_kms_key.exec.arn
  exec_log_group_arn  = aws_cloudwatch_log_group.exec_sessions.arn
}

# ---- the bot ----------------------------------------------------------------------------------------

module "bot" {
  source = "../../bot"

  name               = "ecs-exec-bot"
  image              = var.bot_image
  ecr_repository_arn = var.bot_ecr_repository_arn
  cluster_arn        = aws_ecs_cluster.main.arn
  vpc_id             = var.vpc_id
  subnet_ids         = var.private_subnet_ids
  desired_count      = 2
  slack_mode         = "socket"
  audit_channel      = var.audit_channel

  bot_config_yaml = templatefile("${path.module}/bot.yml.tftpl", {
    region  = var.region
    cluster = aws_ecs_cluster.main.name
    service = module.web.service_name
  })

  exec_cluster_arns    = [aws_ecs_cluster.main.arn]
  exec_container_names = ["nginx"]
  exec_task_tags       = module.web.exec_tags
  exec_kms_key_arns    = [aws_kms_key.exec.arn]
  doctor_principal_arns = [
    aws_iam_role.web_task.arn,
  ]
}
