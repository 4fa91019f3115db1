# What the bot needs in AWS to run a command in a task of the given clusters, and nothing else:
#
#   ecs:ExecuteCommand           only on these clusters and their tasks, with conditions (cluster, and
#                                optionally container name and task tags)
#   ecs:Describe… + ListTasks   to resolve a service alias to a RUNNING task with exec enabled
#   ssm:TerminateSession/Resume  only on ECS Exec sessions (ids start with "ecs-execute-command-")
#   kms:GenerateDataKey          only on the exec KMS keys, only with the SSM session encryption context
#   iam:SimulatePrincipalPolicy  for `doctor`, with ec2:Describe{Subnets,VpcEndpoints,RouteTables} and
#                                ecs:DescribeContainerInstances (all read-only)
#
# Used by infra/bot (clusters in the bot's own account) and infra/env-role (a per-environment role that the
# bot assumes with the Slack user as SourceIdentity).

locals {
  # arn:PARTITION:ecs:REGION:ACCOUNT:cluster/NAME
  cluster_parts = [for arn in var.cluster_arns : split(":", arn)]

  # Task and service ARNs use the long format arn:...:task/CLUSTER_NAME/ID, so a per-cluster prefix
  # scopes them to that cluster.
  task_arns               = [for arn in var.cluster_arns : "${replace(arn, ":cluster/", ":task/")}/*"]
  service_arns            = [for arn in var.cluster_arns : "${replace(arn, ":cluster/", ":service/")}/*"]
  container_instance_arns = [for arn in var.cluster_arns : "${replace(arn, ":cluster/", ":container-instance/")}/*"]

  # ECS Exec session ids are "ecs-execute-command-<random>" (ECS creates the SSM session on the caller's
  # behalf), so the usual "session/${aws:userid}-*" scoping for StartSession users does not apply. Scope to
  # ECS Exec sessions in the clusters' regions and accounts instead.
  session_arns = distinct([
    for p in local.cluster_parts : "arn:${p[1]}:ssm:${p[3]}:${p[4]}:session/ecs-execute-command-*"
  ])

  simulate_principal_arns = length(var.simulate_principal_arns) > 0 ? var.simulate_principal_arns : distinct([
    for p in local.cluster_parts : "arn:${p[1]}:iam::${p[4]}:role/*"
  ])
}

data "aws_iam_policy_document" "this" {
  # ExecuteCommand authorizes two resources, the cluster and the task. Two statements keep the task-only
  # conditions (task tags) off the cluster resource, which does not carry the task's tags.
  statement {
    sid       = "ExecIntoAllowedClusters"
    effect    = "Allow"
    actions   = ["ecs:ExecuteCommand"]
    resources = var.cluster_arns

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.cluster_arns
    }

    dynamic "condition" {
      for_each = length(var.container_names) > 0 ? [1] : []
      content {
        test     = "StringEquals"
        variable = "ecs:container-name"
        values   = var.container_names
      }
    }
  }

  statement {
    sid       = "ExecIntoAllowedTasks"
    effect    = "Allow"
    actions   = ["ecs:ExecuteCommand"]
    resources = local.task_arns

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.cluster_arns
    }

    dynamic "condition" {
      for_each = length(var.container_names) > 0 ? [1] : []
      content {
        test     = "StringEquals"
        variable = "ecs:container-name"
        values   = var.container_names
      }
    }

    dynamic "condition" {
      for_each = var.task_tags
      content {
        test     = "StringEquals"
        variable = "aws:ResourceTag/${condition.key}"
        values   = [condition.value]
      }
    }
  }

  statement {
    sid       = "DescribeAllowedClusters"
    effect    = "Allow"
    actions   = ["ecs:DescribeClusters"]
    resources = var.cluster_arns
  }

  statement {
    sid       = "DescribeServicesAndTasks"
    effect    = "Allow"
    actions   = ["ecs:DescribeServices", "ecs:DescribeTasks"]
    resources = concat(local.service_arns, local.task_arns)

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.cluster_arns
    }
  }

  # ListTasks has no task-level resource (only container-instance) and ListServices none at all; the
  # cluster condition scopes both. (ecs:ListClusters is deliberately not granted: it would reveal every
  # cluster name in the account; without it an unknown-cluster error just offers no "did you mean".)
  statement {
    sid       = "ListInAllowedClusters"
    effect    = "Allow"
    actions   = ["ecs:ListTasks", "ecs:ListServices"]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.cluster_arns
    }
  }

  # DescribeTaskDefinition supports no resource-level permissions (read-only: which containers exist,
  # initProcessEnabled, the task role for doctor).
  statement {
    sid       = "DescribeTaskDefinitions"
    effect    = "Allow"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  # Cancel (TerminateSession) and reconnect (ResumeSession) the data channels of ECS Exec sessions.
  statement {
    sid       = "ControlEcsExecSessions"
    effect    = "Allow"
    actions   = ["ssm:TerminateSession", "ssm:ResumeSession"]
    resources = local.session_arns
  }

  # Encrypted sessions: the client generates the data key with the session's encryption context, which the
  # agent repeats when it decrypts (aws:ssm:SessionId, aws:ssm:TargetId).
  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "GenerateExecSessionDataKeys"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey"]
      resources = var.kms_key_arns

      condition {
        test     = "StringLike"
        variable = "kms:EncryptionContext:aws:ssm:SessionId"
        values   = ["ecs-execute-command-*"]
      }
    }
  }

  # doctor on EC2 launch type: the ECS agent version of the task's container instance.
  statement {
    sid       = "DoctorDescribesContainerInstances"
    effect    = "Allow"
    actions   = ["ecs:DescribeContainerInstances"]
    resources = local.container_instance_arns

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.cluster_arns
    }
  }

  # doctor's network check (ssmmessages VPC endpoint or a NAT/IGW default route for the task's subnet).
  # EC2 Describe* calls support no resource-level permissions; all are read-only.
  statement {
    sid       = "DoctorReadsNetwork"
    effect    = "Allow"
    actions   = ["ec2:DescribeSubnets", "ec2:DescribeVpcEndpoints", "ec2:DescribeRouteTables"]
    resources = ["*"]
  }

  statement {
    sid       = "DoctorSimulatesPolicies"
    effect    = "Allow"
    actions   = ["iam:SimulatePrincipalPolicy"]
    resources = local.simulate_principal_arns
  }
}
