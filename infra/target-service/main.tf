# Prepares one *target* service for ECS Exec, the way ecs-exec-bot needs it:
#
#   1. enable_execute_command = true on the service: ECS then starts the SSM agent in every new task
#      (existing tasks need a new deployment; the module's service change triggers one);
#   2. the task role gets the agent's ssmmessages channel permissions (+ kms:Decrypt for encrypted sessions,
#      + log delivery when the cluster logs sessions);
#   3. the exec tags are propagated to the tasks, so the bot's policy can require them.
#
# initProcessEnabled: set `linuxParameters = { initProcessEnabled = true }` on each container of the task
# definition (the `exec_linux_parameters` output). The exec'd command then runs under an init process that
# reaps it, instead of leaving zombie processes behind in the container after many sessions (AWS recommends
# it for ECS Exec). It is part of the task definition, which this module does not own.

data "aws_partition" "current" {}

resource "aws_ecs_service" "this" {
  name                    = var.name
  cluster                 = var.cluster_arn
  task_definition         = var.task_definition_arn
  desired_count           = var.desired_count
  launch_type             = var.launch_type
  platform_version        = var.launch_type == "FARGATE" ? "LATEST" : null
  enable_execute_command  = true
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = var.assign_public_ip
  }

  tags = merge(var.tags, var.exec_tags)

  depends_on = [aws_iam_role_policy.ecs_exec_agent]
}

data "aws_iam_policy_document" "ecs_exec_agent" {
  # The SSM agent inside the task opens its control and data channels with these. ssmmessages has no
  # resource-level permissions, so "*" is the only possible resource.
  statement {
    sid    = "SsmAgentChannels"
    effect = "Allow"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.exec_kms_key_arn == null ? [] : [1]
    content {
      sid       = "DecryptExecSessions"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [var.exec_kms_key_arn]
    }
  }

  # logs:DescribeLogGroups has no resource-level permissions; the agent uses it to find the group.
  dynamic "statement" {
    for_each = var.exec_log_group_arn == null ? [] : [1]
    content {
      sid       = "FindExecLogGroup"
      effect    = "Allow"
      actions   = ["logs:DescribeLogGroups"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.exec_log_group_arn == null ? [] : [1]
    content {
      sid       = "WriteExecSessionLogs"
      effect    = "Allow"
      actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
      resources = ["${var.exec_log_group_arn}:*"]
    }
  }

  dynamic "statement" {
    for_each = var.exec_log_bucket_arn == null ? [] : [1]
    content {
      sid       = "CheckExecLogBucket"
      effect    = "Allow"
      actions   = ["s3:GetBucketLocation", "s3:GetEncryptionConfiguration"]
      resources = [var.exec_log_bucket_arn]
    }
  }

  dynamic "statement" {
    for_each = var.exec_log_bucket_arn == null ? [] : [1]
    content {
      sid       = "WriteExecSessionLogObjects"
      effect    = "Allow"
      actions   = ["s3:PutObject"]
      resources = ["${var.exec_log_bucket_arn}/${var.exec_log_bucket_prefix}*"]
    }
  }
}

resource "aws_iam_role_policy" "ecs_exec_agent" {
  name   = "ecs-exec-agent"
  role   = var.task_role_name
  policy = data.aws_iam_policy_document.ecs_exec_agent.json
}
