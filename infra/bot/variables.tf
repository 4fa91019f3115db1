# ---- where the bot runs -----------------------------------------------------------------------------

variable "name" {
  description = "Name for the bot's resources (service, roles, table, outputs bucket, log group, secret prefix)."
  type        = string
  default     = "ecs-exec-bot"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,39}$", var.name))
    error_message = "Use 1-40 letters, digits and hyphens, starting with a letter."
  }
}

variable "image" {
  description = "Container image of the bot (built from the repository's Dockerfile), ideally pinned by digest: REPO@sha256:..."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository holding the image, so the execution role may pull only from it. Null when the image is public or elsewhere."
  type        = string
  default     = null
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the bot's own service runs in (Fargate capacity)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the bot's tasks (for its security group)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the bot's tasks. Use private subnets with a NAT gateway (Slack is on the internet) and VPC endpoints for AWS APIs."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet."
  }
}

variable "assign_public_ip" {
  description = "Give tasks a public IP. Keep false with private subnets; true only for public subnets without NAT."
  type        = bool
  default     = false
}

variable "egress_cidr_blocks" {
  description = "Where the bot may connect on TCP 443 (Slack, AWS APIs, the SSM data channel). The security group allows nothing else out."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "desired_count" {
  description = "Number of bot replicas. Replicas share state through the DynamoDB table. In Socket Mode Slack allows 10 connections per app, and a rolling deployment briefly doubles the count, so keep it <= 5 there."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 1 && var.desired_count == floor(var.desired_count)
    error_message = "desired_count must be a whole number >= 1."
  }
}

variable "cpu" {
  description = "Fargate task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate task memory in MiB (must be valid for the chosen cpu)."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "Fargate CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "port" {
  description = "Port the bot listens on for /healthz (and /slack/events in HTTP mode); passed as PORT."
  type        = number
  default     = 3000
}

# ---- Slack ------------------------------------------------------------------------------------------

variable "slack_mode" {
  description = "How Slack reaches the bot: \"socket\" (Socket Mode, outbound only, needs SLACK_APP_TOKEN) or \"http\" (Slack POSTs to a public URL, needs SLACK_SIGNING_SECRET and a load balancer)."
  type        = string
  default     = "socket"

  validation {
    condition     = contains(["socket", "http"], var.slack_mode)
    error_message = "slack_mode must be \"socket\" or \"http\"."
  }
}

variable "slack_secret_arn" {
  description = "Full ARN of an existing Secrets Manager secret whose JSON holds SLACK_BOT_TOKEN plus SLACK_APP_TOKEN (socket) or SLACK_SIGNING_SECRET (http). Null = the module creates an empty secret for you to fill."
  type        = string
  default     = null
}

variable "secrets_kms_key_arn" {
  description = "Customer managed KMS key encrypting the Slack secret (the execution role may decrypt with it, via Secrets Manager only). Null = the AWS managed key."
  type        = string
  default     = null
}

variable "audit_channel" {
  description = "Slack channel ID (C...) that receives an audit line for every request. Null = no audit channel."
  type        = string
  default     = null
}

# ---- what the bot may do ----------------------------------------------------------------------------

variable "bot_config_yaml" {
  description = "The bot's YAML file (environments, services, policy; see docs/architecture.md). Written to /etc/ecs-exec-bot/bot.yml by an init container at every task start, with followups.s3_bucket added (kept_outputs_enabled)."
  type        = string

  # The module adds to its `followups` section, so it must be a YAML mapping.
  validation {
    condition     = can(keys(yamldecode(var.bot_config_yaml)))
    error_message = "bot_config_yaml must be a YAML mapping (environments:, services:, policy: ...)."
  }
}

variable "exec_cluster_arns" {
  description = "ECS clusters in this account the bot may exec into with its own task role. Clusters reached through a per-environment role (assume_role_arns) belong in that role's policy instead (infra/env-role)."
  type        = list(string)
  default     = []
}

variable "exec_container_names" {
  description = "The containers the bot may exec into (ecs:container-name): the catalogue's `container:` values, plus a sidecar only where a policy rule names it. Required with exec_cluster_arns: never any container."
  type        = list(string)
  default     = []
}

variable "exec_task_tags" {
  description = "Tags a task must carry for the bot to exec into it (aws:ResourceTag on the task). infra/target-service tags its services and propagates the tags to tasks. Required with exec_cluster_arns: never any task."
  type        = map(string)
  default     = {}
}

variable "exec_kms_key_arns" {
  description = "KMS keys set as the clusters' executeCommandConfiguration.kmsKeyId (encrypted sessions); the bot gets kms:GenerateDataKey on them. Empty when sessions are not KMS-encrypted."
  type        = list(string)
  default     = []
}

variable "doctor_principal_arns" {
  description = "Principals `ecs-exec-bot doctor` may check with iam:SimulatePrincipalPolicy. Empty = any role in the clusters' accounts (read-only)."
  type        = list(string)
  default     = []
}

variable "assume_role_arns" {
  description = "Per-environment roles (environments.<env>.role_arn in the bot's YAML) the bot assumes with the Slack user as SourceIdentity. Create them with infra/env-role."
  type        = list(string)
  default     = []
}

# ---- state and logs ---------------------------------------------------------------------------------

variable "table_kms_key_arn" {
  description = "Customer managed KMS key for the DynamoDB table. Null = the AWS managed key aws/dynamodb (encryption at rest is on either way)."
  type        = string
  default     = null
}

variable "table_deletion_protection" {
  description = "Protect the approvals/audit table from deletion."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of the bot's CloudWatch log group, in days (a year by default: the JSON log lines are half of the audit trail)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, ...)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key encrypting the log group. Null = CloudWatch Logs' default encryption."
  type        = string
  default     = null
}

variable "log_level" {
  description = "Bot log level: DEBUG, INFO, WARNING or ERROR."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

# ---- HTTP mode --------------------------------------------------------------------------------------

variable "target_group_arn" {
  description = "HTTP mode: ALB target group (target type ip, health check path /healthz) to register the tasks in. Null in Socket Mode."
  type        = string
  default     = null
}

variable "ingress_security_group_ids" {
  description = "HTTP mode: security groups (the load balancer's) allowed to reach the bot's port. Empty = no inbound traffic at all."
  type        = list(string)
  default     = []
}

# ---- misc -------------------------------------------------------------------------------------------

variable "extra_environment" {
  description = "Additional non-secret environment variables for the bot container."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# ---- kept outputs (follow-up filters) ---------------------------------------------------------------

variable "kept_outputs_enabled" {
  description = "Create an S3 bucket for the runs' redacted outputs (follow-up filters), grant the task role its prefix and set followups.s3_bucket in the bot's YAML. false = no bucket, and follow-ups off (followups.keep_hours: 0) unless bot_config_yaml has a followups section."
  type        = bool
  default     = true
}

variable "kept_outputs_bucket_name" {
  description = "Name of the kept-outputs bucket. Null = \"<name>-outputs-<account id>\" (lowercased)."
  type        = string
  default     = null

  validation {
    condition     = var.kept_outputs_bucket_name == null || can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.kept_outputs_bucket_name))
    error_message = "Use 3-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit."
  }
}
