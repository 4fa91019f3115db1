# Kept outputs (bot/store/outputs_s3.py, docs/deploy.md "Kept outputs"): each run's redacted output, kept
# for follow-up filters. Replicas share them, so they live in S3 rather than on a task's disk. The bot
# deletes a run after followups.keep_hours; the lifecycle rule below is the backstop when no bot runs.

locals {
  # The user's YAML as a value; `followups` is the only section the module adds to.
  user_config    = yamldecode(var.bot_config_yaml)
  user_followups = try(local.user_config.followups, null)

  # The same default and "/" normalisation as FollowupsConfig/S3Outputs, so IAM and the lifecycle rule
  # cover exactly the keys the bot writes.
  kept_outputs_prefix_set = try(tostring(local.user_followups.s3_prefix), "ecs-exec-bot/outputs/")
  kept_outputs_prefix = (
    local.kept_outputs_prefix_set == "" || endswith(local.kept_outputs_prefix_set, "/")
    ? local.kept_outputs_prefix_set : "${local.kept_outputs_prefix_set}/"
  )
  # Objects live at least one day past keep_hours (the bot's maximum is 30 days).
  kept_outputs_expiry_days = max(1, ceil(try(tonumber(local.user_followups.keep_hours), 24) / 24) + 1)

  kept_outputs_bucket     = var.kept_outputs_bucket_name != null ? var.kept_outputs_bucket_name : "${lower(var.name)}-outputs-${local.account}"
  kept_outputs_bucket_arn = "arn:${local.partition}:s3:::${local.kept_outputs_bucket}"

  # Module defaults first, the user's keys last, so a user-set followups key (s3_bucket too) wins. Off:
  # follow-ups off unless the YAML configures them itself (a task's own disk is not shared by replicas).
  # merge() skips the null arguments.
  bot_config = merge(local.user_config, {
    followups = merge(
      var.kept_outputs_enabled ? { s3_bucket = local.kept_outputs_bucket, s3_prefix = local.kept_outputs_prefix } : null,
      var.kept_outputs_enabled || local.user_followups != null ? null : { keep_hours = 0 },
      local.user_followups,
    )
  })
  # What the init container writes: Terraform's re-encoding (comments dropped, mapping keys sorted).
  bot_config_yaml = yamlencode(local.bot_config)
}

resource "aws_s3_bucket" "kept_outputs" {
  #checkov:skip=CKV_AWS_21:versioning would keep every deleted output as a noncurrent version; kept outputs are ephemeral by design
  #checkov:skip=CKV_AWS_145:the bot writes with SSE-S3 (ServerSideEncryption=AES256), which overrides a KMS default
  #checkov:skip=CKV_AWS_18:ephemeral redacted copies; the audit trail (DynamoDB, CloudWatch) records every run
  #checkov:skip=CKV_AWS_144:ephemeral data; no replica in another region
  #checkov:skip=CKV2_AWS_62:nothing consumes events from this bucket
  count = var.kept_outputs_enabled ? 1 : 0

  bucket = local.kept_outputs_bucket
  # Only expiring copies of outputs live here: destroying the module must not fail on them.
  force_destroy = true
  tags          = local.tags
}

# No aws_s3_bucket_versioning: versioning stays off, so the bot's DeleteObjects and the lifecycle
# expiry really remove an output instead of leaving it behind as a noncurrent version.

resource "aws_s3_bucket_public_access_block" "kept_outputs" {
  count = var.kept_outputs_enabled ? 1 : 0

  bucket                  = aws_s3_bucket.kept_outputs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "kept_outputs" {
  count = var.kept_outputs_enabled ? 1 : 0

  bucket = aws_s3_bucket.kept_outputs[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# SSE-S3, not the module's *_kms_key_arn pattern: the bot's PutObject names AES256, which would override a
# KMS default (bot/store/outputs_s3.py).
resource "aws_s3_bucket_server_side_encryption_configuration" "kept_outputs" {
  count = var.kept_outputs_enabled ? 1 : 0

  bucket = aws_s3_bucket.kept_outputs[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "kept_outputs" {
  count = var.kept_outputs_enabled ? 1 : 0

  bucket = aws_s3_bucket.kept_outputs[0].id

  rule {
    id     = "expire-kept-outputs"
    status = "Enabled"

    filter {
      prefix = local.kept_outputs_prefix
    }

    expiration {
      days = local.kept_outputs_expiry_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "kept_outputs_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.kept_outputs_bucket_arn, "${local.kept_outputs_bucket_arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "kept_outputs" {
  count = var.kept_outputs_enabled ? 1 : 0

  bucket = aws_s3_bucket.kept_outputs[0].id
  policy = data.aws_iam_policy_document.kept_outputs_bucket.json

  # S3 refuses concurrent changes to a bucket's access settings.
  depends_on = [aws_s3_bucket_public_access_block.kept_outputs]
}
