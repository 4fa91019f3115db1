# The store shared by every replica (bot/store/dynamodb.py, docs/store.md): approvals with compare-and-set,
# idempotency claims, run slots, heartbeats and the audit trail. The key schema and index names mirror
# `table_definition()` there; keep the two in step (tests/infra checks them against each other).

resource "aws_dynamodb_table" "state" {
  name                        = var.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi1pk"
    type = "S"
  }
  attribute {
    name = "gsi1sk"
    type = "S"
  }
  attribute {
    name = "gsi2pk"
    type = "S"
  }
  attribute {
    name = "gsi2sk"
    type = "S"
  }
  attribute {
    name = "gsi3pk"
    type = "S"
  }
  attribute {
    name = "gsi3sk"
    type = "S"
  }

  # Approvals by state / audit by user.
  global_secondary_index {
    name            = "gsi1"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  # Audit by service.
  global_secondary_index {
    name            = "gsi2"
    hash_key        = "gsi2pk"
    range_key       = "gsi2sk"
    projection_type = "ALL"
  }

  # Audit by request id.
  global_secondary_index {
    name            = "gsi3"
    hash_key        = "gsi3pk"
    range_key       = "gsi3sk"
    projection_type = "ALL"
  }

  # Claims, leases, heartbeats and old approvals carry `ttl` (epoch seconds). TTL deletes lazily, so the
  # code still compares `expires_at` with the clock; TTL only keeps the table small.
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  # The audit trail lives here: keep 35 days of restore points.
  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.table_kms_key_arn
  }

  tags = local.tags
}
