variable "name" {
  description = "Name of the role (the bot's YAML then has environments.<env>.role_arn = this role's ARN)."
  type        = string
  default     = "ecs-exec-bot"
}

variable "bot_task_role_arns" {
  description = "Task role ARN(s) of the bot (infra/bot output task_role_arn), usually in another account, allowed to assume this role."
  type        = list(string)

  validation {
    condition     = length(var.bot_task_role_arns) > 0
    error_message = "Give the bot's task role ARN."
  }
}

variable "require_source_identity" {
  description = "Refuse AssumeRole calls that do not set a SourceIdentity (the bot always sets the Slack user ID), so every session in CloudTrail names a person."
  type        = bool
  default     = true
}

variable "max_session_duration" {
  description = "Maximum session duration of the role, in seconds (the bot's sessions stay below ECS Exec's 20-minute idle limit)."
  type        = number
  default     = 3600
}

variable "exec_cluster_arns" {
  description = "ECS clusters of this environment (this account) the bot may exec into through this role."
  type        = list(string)
}

variable "exec_container_names" {
  description = "Only containers with these names (ecs:container-name): the catalogue's containers. Required: never any container."
  type        = list(string)
}

variable "exec_task_tags" {
  description = "Tags a task must carry (aws:ResourceTag on the task); see infra/target-service exec_tags. Required: never any task in the clusters."
  type        = map(string)
}

variable "exec_kms_key_arns" {
  description = "KMS keys of encrypted ECS Exec sessions in these clusters (kms:GenerateDataKey). Empty when sessions are not encrypted."
  type        = list(string)
  default     = []
}

variable "doctor_principal_arns" {
  description = "Principals `ecs-exec-bot doctor` may check with iam:SimulatePrincipalPolicy. Empty = any role in this account (read-only)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
