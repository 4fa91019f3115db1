# Two roles: the execution role is what ECS uses to start the task (pull the image, read the Slack secret,
# write logs); the task role is what the bot's code uses (ECS Exec, DynamoDB, kept outputs in S3, assuming
# per-env roles).

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    sid     = "EcsTasksAssume"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Confused-deputy guard: only tasks of this account may use the roles.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# ---- execution role -----------------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  description        = "Starts ${var.name} tasks: pull image, read the Slack secret, write logs."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.bot.arn}:*"]
  }

  # Only the bot's own secret: ECS injects its JSON keys as environment variables (container `secrets`).
  statement {
    sid       = "ReadSlackSecret"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.slack_secret_arn]
  }

  dynamic "statement" {
    for_each = var.secrets_kms_key_arn == null ? [] : [1]
    content {
      sid       = "DecryptSlackSecret"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [var.secrets_kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "PullBotImage"
      effect    = "Allow"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = [var.ecr_repository_arn]
    }
  }

  # GetAuthorizationToken has no resource-level permissions; it only returns a registry login.
  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "EcrLogin"
      effect    = "Allow"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-task"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---- task role ----------------------------------------------------------------------------------------

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  description        = "The ${var.name} process: ECS Exec into allowed clusters, its DynamoDB table and outputs bucket, per-environment roles."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}

module "exec_permissions" {
  source = "../exec-permissions"
  count  = length(var.exec_cluster_arns) > 0 ? 1 : 0

  cluster_arns            = var.exec_cluster_arns
  container_names         = var.exec_container_names
  task_tags               = var.exec_task_tags
  kms_key_arns            = var.exec_kms_key_arns
  simulate_principal_arns = var.doctor_principal_arns
}

resource "aws_iam_role_policy" "task_exec" {
  count  = length(var.exec_cluster_arns) > 0 ? 1 : 0
  name   = "ecs-exec"
  role   = aws_iam_role.task.id
  policy = module.exec_permissions[0].json
}

data "aws_iam_policy_document" "task_state" {
  # Item-level actions only (no CreateTable/DeleteTable/UpdateTable), on this table and its indexes.
  # The audit trail is one the running bot cannot erase: no Scan, DeleteItem or BatchWriteItem on audit
  # records (partition keys "AUDIT#<day>", see bot/store/dynamodb.py). dynamodb:LeadingKeys is the partition
  # key of every item a request touches, so state items (approvals, claims, slots, heartbeats) and audit
  # items get separate statements; nothing grants Scan or BatchWriteItem at all. Old audit records expire
  # through DynamoDB TTL (`ttl`, set from ECS_EXEC_BOT_AUDIT_RETENTION_DAYS when each record is written);
  # `ecs-exec-bot audit --prune-older-than` is an operator action with the operator's own credentials
  # (infra/README.md, "Audit retention").
  statement {
    sid    = "UseStateItems"
    effect = "Allow"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:Query",
    ]
    resources = [aws_dynamodb_table.state.arn]

    condition {
      test     = "ForAllValues:StringNotLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["AUDIT#*"]
    }
  }

  statement {
    sid       = "AppendAuditRecords"
    effect    = "Allow"
    actions   = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query"]
    resources = [aws_dynamodb_table.state.arn]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["AUDIT#*"]
    }
  }

  statement {
    sid       = "QueryStateIndexes"
    effect    = "Allow"
    actions   = ["dynamodb:Query"]
    resources = ["${aws_dynamodb_table.state.arn}/index/*"]
  }

  dynamic "statement" {
    for_each = var.table_kms_key_arn == null ? [] : [1]
    content {
      sid       = "UseTableKey"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
      resources = [var.table_kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${local.region}.amazonaws.com"]
      }
    }
  }

  # Kept outputs (kept_outputs.tf): objects under the bot's prefix only; DeleteObjects needs DeleteObject.
  dynamic "statement" {
    for_each = var.kept_outputs_enabled ? [1] : []
    content {
      sid       = "KeepRunOutputs"
      effect    = "Allow"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = ["${local.kept_outputs_bucket_arn}/${local.kept_outputs_prefix}*"]
    }
  }

  # ListObjectsV2 is s3:ListBucket on the bucket; the condition keeps listing inside the prefix.
  dynamic "statement" {
    for_each = var.kept_outputs_enabled ? [1] : []
    content {
      sid       = "ListRunOutputs"
      effect    = "Allow"
      actions   = ["s3:ListBucket"]
      resources = [local.kept_outputs_bucket_arn]

      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${local.kept_outputs_prefix}*"]
      }
    }
  }

  # Per-environment roles, assumed with SourceIdentity = the Slack user so CloudTrail names the person.
  dynamic "statement" {
    for_each = length(var.assume_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeEnvironmentRoles"
      effect    = "Allow"
      actions   = ["sts:AssumeRole", "sts:SetSourceIdentity"]
      resources = var.assume_role_arns
    }
  }
}

resource "aws_iam_role_policy" "task_state" {
  name   = "state-and-roles"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_state.json
}
