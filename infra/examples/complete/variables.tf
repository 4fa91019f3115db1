variable "region" {
  description = "AWS region of the example."
  type        = string
  default     = "us-east-1"
}

variable "vpc_id" {
  description = "An existing VPC with private subnets, a NAT gateway (for Slack) and, ideally, VPC endpoints (see docs/deploy.md)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for both the bot and the target service."
  type        = list(string)
}

variable "bot_image" {
  description = "The bot's image built from the repository's Dockerfile, e.g. 111122223333.dkr.ecr.us-east-1.amazonaws.com/ecs-exec-bot@sha256:..."
  type        = string
}

variable "bot_ecr_repository_arn" {
  description = "ECR repository of bot_image (null if the image is elsewhere)."
  type        = string
  default     = null
}

variable "audit_channel" {
  description = "Slack channel ID for audit lines (null = none)."
  type        = string
  default     = null
}
