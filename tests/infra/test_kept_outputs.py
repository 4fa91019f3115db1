"""infra/bot's bucket for kept outputs (bot/store/outputs_s3.py): private, SSE-S3, TLS only, expiring under
the bot's prefix, the task role scoped to that prefix, and the bucket name merged into the bot's YAML.

The merge is Terraform code (yamldecode/merge/yamlencode); where a ``terraform`` binary is on PATH, its
``locals`` block is evaluated with ``terraform console`` (no provider needed) and the result parsed by the
bot's own config loader.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bot.config import FollowupsConfig, parse_config
from tests.infra.terraform import INFRA, REPO, all_modules, policy_statements

BOT = all_modules()["bot"]
RESOURCES = BOT.typed("resource")
LOCALS = BOT.locals()
TASK = {s.where.rsplit("[", 1)[1].rstrip("]"): s for s in policy_statements(BOT, "task_state")}
ENABLED = "${var.kept_outputs_enabled ? 1 : 0}"


def _s3(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = RESOURCES[(f"aws_s3_bucket{kind}", "kept_outputs")]
    assert body["count"] == ENABLED, f"aws_s3_bucket{kind} follows kept_outputs_enabled"
    if kind:
        assert body["bucket"] == "${aws_s3_bucket.kept_outputs[0].id}"
    return body


def test_public_access_is_blocked_and_acls_are_off() -> None:
    block = _s3("_public_access_block")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert block[flag] is True, flag
    assert _s3("_ownership_controls")["rule"] == [{"object_ownership": "BucketOwnerEnforced"}]


def test_default_encryption_is_sse_s3_as_the_bot_writes() -> None:
    (rule,) = _s3("_server_side_encryption_configuration")["rule"]
    assert rule["apply_server_side_encryption_by_default"] == [{"sse_algorithm": "AES256"}]
    source = (REPO / "bot" / "store" / "outputs_s3.py").read_text(encoding="utf-8")
    assert 'ServerSideEncryption="AES256"' in source


def test_objects_under_the_prefix_expire_and_uploads_are_aborted() -> None:
    (rule,) = _s3("_lifecycle_configuration")["rule"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == [{"prefix": "${local.kept_outputs_prefix}"}]
    assert rule["expiration"] == [{"days": "${local.kept_outputs_expiry_days}"}]
    assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 1}]


def test_versioning_stays_off() -> None:
    """A deleted output must be gone, not a noncurrent version."""
    assert not [name for (type_, name) in RESOURCES if type_ == "aws_s3_bucket_versioning"]


def test_the_bucket_refuses_plain_http() -> None:
    policy = _s3("_policy")
    assert policy["policy"] == "${data.aws_iam_policy_document.kept_outputs_bucket.json}"
    (deny,) = policy_statements(BOT, "kept_outputs_bucket")
    assert deny.effect == "Deny" and deny.actions == ("s3:*",) and deny.has_principals
    assert deny.resources == ("${local.kept_outputs_bucket_arn}", "${local.kept_outputs_bucket_arn}/*")
    assert list(deny.conditions) == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    body = BOT.typed("data")[("aws_iam_policy_document", "kept_outputs_bucket")]
    assert body["statement"][0]["principals"] == [{"type": "*", "identifiers": ["*"]}]


def test_the_task_role_reaches_only_the_prefix() -> None:
    objects, listing = TASK["KeepRunOutputs"], TASK["ListRunOutputs"]
    assert objects.dynamic and listing.dynamic
    assert set(objects.actions) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert objects.resources == ("${local.kept_outputs_bucket_arn}/${local.kept_outputs_prefix}*",)
    assert listing.actions == ("s3:ListBucket",)
    assert listing.resources == ("${local.kept_outputs_bucket_arn}",)
    assert list(listing.conditions) == [
        {"test": "StringLike", "variable": "s3:prefix", "values": ["${local.kept_outputs_prefix}*"]}
    ]
    s3_anywhere = [s.where for s in policy_statements(BOT, "task_state") if any("s3:" in a for a in s.actions)]
    assert sorted(s3_anywhere) == sorted([objects.where, listing.where])


def test_the_module_defaults_are_the_bots() -> None:
    defaults = FollowupsConfig()
    assert f'"{defaults.s3_prefix}")' in LOCALS["kept_outputs_prefix_set"]
    assert f"keep_hours), {defaults.keep_hours:g}) / 24)" in LOCALS["kept_outputs_expiry_days"]


def test_the_init_container_writes_the_merged_yaml() -> None:
    (config,) = [c for c in LOCALS["container_definitions"] if c["name"] == "config"]
    assert config["environment"] == [{"name": "ECS_EXEC_BOT_CONFIG_YAML", "value": "${local.bot_config_yaml}"}]
    assert LOCALS["bot_config_yaml"] == "${yamlencode(local.bot_config)}"
    outputs = BOT.labelled("output")
    assert {"kept_outputs_bucket_name", "kept_outputs_bucket_arn", "kept_outputs_prefix"} <= set(outputs)


# ---- the merge, evaluated by Terraform -------------------------------------------------------------------

TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="no terraform binary on PATH")

_HARNESS = """
variable "bot_config_yaml" { type = string }
variable "kept_outputs_enabled" { type = bool }
variable "kept_outputs_bucket_name" {
  type    = string
  default = null
}
variable "name" {
  type    = string
  default = "ecs-exec-bot"
}
locals {
  account   = "111122223333"
  partition = "aws"
}
"""


def _locals_block() -> str:
    text = (INFRA / "bot" / "kept_outputs.tf").read_text(encoding="utf-8")
    match = re.search(r"^locals \{\n.*?^\}\n", text, re.DOTALL | re.MULTILINE)
    assert match is not None
    return match.group(0)


def evaluate(tmp_path: Path, yaml_text: str, *, enabled: bool = True) -> dict[str, Any]:
    (tmp_path / "main.tf").write_text(_HARNESS + _locals_block(), encoding="utf-8")
    (tmp_path / "vars.tfvars.json").write_text(
        json.dumps({"bot_config_yaml": yaml_text, "kept_outputs_enabled": enabled}), encoding="utf-8"
    )
    expr = (
        "base64encode(jsonencode({yaml = local.bot_config_yaml, prefix = local.kept_outputs_prefix,"
        " days = local.kept_outputs_expiry_days, bucket = local.kept_outputs_bucket}))"
    )
    done = subprocess.run(
        [str(TERRAFORM), "console", "-var-file=vars.tfvars.json"], input=expr, cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    (encoded,) = re.findall(r'^"([A-Za-z0-9+/=]+)"$', done.stdout, re.MULTILINE)
    result: dict[str, Any] = json.loads(base64.b64decode(encoded))
    return result


@needs_terraform
def test_the_example_config_gets_the_bucket(tmp_path: Path) -> None:
    text = (INFRA / "examples" / "complete" / "bot.yml.tftpl").read_text(encoding="utf-8")
    for name, value in {"region": "us-east-1", "cluster": "example", "service": "web-nginx"}.items():
        text = text.replace("${" + name + "}", value)
    out = evaluate(tmp_path, text)
    config = parse_config(out["yaml"], source="rendered")
    assert config.followups.s3_bucket == out["bucket"] == "ecs-exec-bot-outputs-111122223333"
    assert config.followups.s3_prefix == out["prefix"] == FollowupsConfig().s3_prefix
    assert config.followups.enabled and out["days"] == 2
    source = parse_config(text, source="template")
    assert config.model_dump(exclude={"followups"}) == source.model_dump(exclude={"followups"})
    assert config.policy.model_dump() == source.policy.model_dump(), "the rest survives the round trip"


@needs_terraform
def test_user_set_followups_keys_win(tmp_path: Path) -> None:
    out = evaluate(tmp_path, "followups:\n  s3_bucket: my-own-bucket\n  s3_prefix: kept\n  keep_hours: 72\n")
    followups = parse_config(out["yaml"], source="rendered").followups
    assert (followups.s3_bucket, followups.s3_prefix, followups.keep_hours) == ("my-own-bucket", "kept", 72)
    assert out["prefix"] == "kept/", "IAM and the lifecycle rule use the prefix the bot normalises to"
    assert out["days"] == 4, "the backstop never deletes before keep_hours"


@needs_terraform
def test_turned_off_the_module_turns_followups_off_unless_the_yaml_has_them(tmp_path: Path) -> None:
    off = parse_config(evaluate(tmp_path, "services: {}\n", enabled=False)["yaml"], source="rendered")
    assert not off.followups.enabled and off.followups.s3_bucket is None
    own = evaluate(tmp_path, "followups:\n  directory: /data/outputs\n", enabled=False)
    kept = parse_config(own["yaml"], source="rendered").followups
    assert kept.enabled and kept.s3_bucket is None and str(kept.directory) == "/data/outputs"
