variable "cluster_arns" {
  description = "ARNs of the ECS clusters the bot may run commands in (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME). All must be in the account whose principal gets this policy."
  type        = list(string)

  validation {
    condition     = length(var.cluster_arns) > 0
    error_message = "Give at least one cluster ARN; with none, do not instantiate this module."
  }

  validation {
    condition     = alltrue([for arn in var.cluster_arns : can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]+$", arn))])
    error_message = "Each cluster ARN must look like arn:aws:ecs:us-east-1:111122223333:cluster/NAME (no wildcards)."
  }
}

variable "container_names" {
  description = "ecs:ExecuteCommand is allowed only into containers with these names (condition ecs:container-name): the catalogue's containers; a sidecar only when a policy rule names it. Required: never any container."
  type        = list(string)

  validation {
    condition     = length(var.container_names) > 0
    error_message = "Name the containers the bot may exec into (the catalogue's `container:` values); an empty list would allow any container of any task."
  }
}

variable "task_tags" {
  description = "Tags a task must carry for ecs:ExecuteCommand into it (condition aws:ResourceTag/KEY on the task resource). Target services propagate their tags to tasks (see infra/target-service). Required: never any task in the clusters."
  type        = map(string)

  validation {
    condition     = length(var.task_tags) > 0
    error_message = "Give the tags the bot's target tasks carry (infra/target-service outputs exec_tags); an empty map would allow any task in the clusters."
  }
}

variable "kms_key_arns" {
  description = "KMS keys set as executeCommandConfiguration.kmsKeyId on the clusters (encrypted ECS Exec sessions). The bot calls kms:GenerateDataKey on them; empty when sessions are not KMS-encrypted."
  type        = list(string)
  default     = []
}

variable "simulate_principal_arns" {
  description = "IAM principals `ecs-exec-bot doctor` may check with iam:SimulatePrincipalPolicy (itself and the target services' task roles). Empty = every role in the clusters' accounts (the action is read-only)."
  type        = list(string)
  default     = []
}
