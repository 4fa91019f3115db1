variable "name" {
  description = "Name of the ECS service."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the cluster the service runs in. To encrypt sessions or log them, set executeCommandConfiguration on the cluster (see infra/examples/complete)."
  type        = string
}

variable "task_definition_arn" {
  description = "Task definition of the service. Its task role must be task_role_name, and its containers should set linuxParameters.initProcessEnabled = true (use the exec_linux_parameters output)."
  type        = string
}

variable "task_role_name" {
  description = "Name of the service's task role (taskRoleArn in the task definition); it gets the SSM agent's ssmmessages permissions. Without a task role ECS Exec cannot work."
  type        = string
}

variable "desired_count" {
  description = "Number of tasks."
  type        = number
  default     = 1
}

variable "launch_type" {
  description = "FARGATE or EC2. Fargate needs platform version 1.4.0 or later for ECS Exec."
  type        = string
  default     = "FARGATE"

  validation {
    condition     = contains(["FARGATE", "EC2"], var.launch_type)
    error_message = "launch_type must be FARGATE or EC2."
  }
}

variable "subnet_ids" {
  description = "Subnets of the tasks (awsvpc). They need a route to ssmmessages.REGION.amazonaws.com: a NAT gateway or an ssmmessages interface VPC endpoint."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks; they must allow outbound TCP 443 (the SSM agent dials out to ssmmessages; nothing comes in)."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks a public IP (only for public subnets without NAT)."
  type        = bool
  default     = false
}

variable "exec_kms_key_arn" {
  description = "The cluster's executeCommandConfiguration.kmsKeyId, when sessions are KMS-encrypted: the agent in the task calls kms:Decrypt with it. Null when sessions are not encrypted."
  type        = string
  default     = null
}

variable "exec_log_group_arn" {
  description = "CloudWatch log group receiving ECS Exec session logs (cluster logging = OVERRIDE). Null = no CloudWatch session logging permissions."
  type        = string
  default     = null
}

variable "exec_log_bucket_arn" {
  description = "S3 bucket receiving ECS Exec session logs (cluster logging = OVERRIDE). Null = no S3 session logging permissions."
  type        = string
  default     = null
}

variable "exec_log_bucket_prefix" {
  description = "Key prefix of ECS Exec session logs in exec_log_bucket_arn (the cluster's s3KeyPrefix). Empty = whole bucket."
  type        = string
  default     = ""
}

variable "exec_tags" {
  description = "Tags that mark this service as a target of the bot. They are propagated to its tasks, where the bot's policy (infra/bot exec_task_tags) can require them."
  type        = map(string)
  default     = { "ecs-exec-bot" = "enabled" }
}

variable "tags" {
  description = "Other tags for the service."
  type        = map(string)
  default     = {}
}
