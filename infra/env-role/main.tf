# A role in an environment's account that the bot assumes per request, with SourceIdentity = the Slack
# user ID (so CloudTrail in this account names the person, and the identity sticks through role chaining).
# It carries the same least-privilege ECS Exec permissions as infra/bot's task role (../exec-permissions).

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "BotAssumesWithSourceIdentity"
    effect  = "Allow"
    actions = ["sts:AssumeRole", "sts:SetSourceIdentity"]

    principals {
      type        = "AWS"
      identifiers = var.bot_task_role_arns
    }

    dynamic "condition" {
      for_each = var.require_source_identity ? [1] : []
      content {
        test     = "Null"
        variable = "sts:SourceIdentity"
        values   = ["false"]
      }
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "Assumed by ecs-exec-bot (SourceIdentity = Slack user) to run commands over ECS Exec."
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  tags                 = var.tags
}

module "exec_permissions" {
  source = "../exec-permissions"

  cluster_arns            = var.exec_cluster_arns
  container_names         = var.exec_container_names
  task_tags               = var.exec_task_tags
  kms_key_arns            = var.exec_kms_key_arns
  simulate_principal_arns = var.doctor_principal_arns
}

resource "aws_iam_role_policy" "exec" {
  name   = "ecs-exec"
  role   = aws_iam_role.this.id
  policy = module.exec_permissions.json
}
