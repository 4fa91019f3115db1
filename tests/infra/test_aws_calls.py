"""Every AWS API call the bot's code makes is granted by the Terraform policies (or deliberately not, with
the reason), so a new call in bot/ cannot ship without its IAM permission.

Call sites are found by their client names (``ecs.``, ``self._ssm.``, ``clients.iam.`` ...) and kept only
if botocore knows the name as an operation of that service, so module paths such as ``bot.ssm.channel``
are not mistaken for calls.
"""

from __future__ import annotations

import re
from functools import cache

import botocore.session
from botocore import xform_name

from tests.infra.terraform import REPO, all_modules, literal_actions, policy_statements

SERVICES = ("ecs", "ssm", "kms", "iam", "sts", "ec2", "dynamodb", "s3")
_CALL = re.compile(r"\b_?(" + "|".join(SERVICES) + r")\.([a-z][a-z0-9_]*)\b")
_PAGINATOR = re.compile(r"\b_?(" + "|".join(SERVICES) + r")\.get_paginator\(\s*\"([a-z][a-z0-9_]*)\"")

# Calls made without a grant on purpose: the code treats AccessDenied there as "no extra information".
NOT_GRANTED = {
    "ecs:ListClusters": "best-effort 'did you mean' for an unknown cluster; it would list every cluster",
}
# Operations whose IAM action has another name (S3's list and batch delete).
IAM_ACTION = {"s3:ListObjectsV2": "s3:ListBucket", "s3:DeleteObjects": "s3:DeleteObject"}
# Actions a call needs besides its own (sts.assume_role is made with SourceIdentity).
ALSO_NEEDS = {"sts:AssumeRole": {"sts:SetSourceIdentity"}}


@cache
def _operations(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def actions_called_by_the_bot() -> dict[str, set[str]]:
    """``{iam action: {file:line, ...}}`` for the bot's code (the stand-ins live outside it, in stand-ins/)."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "bot").rglob("*.py")) + sorted((REPO / "handlers").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for pattern in (_CALL, _PAGINATOR):
                for service, op in pattern.findall(line):
                    operation = _operations(service).get(op)
                    if operation is not None:
                        where = f"{path.relative_to(REPO)}:{number}"
                        action = IAM_ACTION.get(f"{service}:{operation}", f"{service}:{operation}")
                        found.setdefault(action, set()).add(where)
    return found


def test_the_scan_finds_the_known_call_sites() -> None:
    called = actions_called_by_the_bot()
    # The exec path exists in every build of the bot; if these vanish the scan is broken, not the bot.
    assert {"ecs:ExecuteCommand", "ecs:DescribeTasks", "ssm:TerminateSession"} <= set(called)
    # Kept outputs in S3 (bot/store/outputs_s3.py), by their IAM names.
    assert {"s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:DeleteObject"} <= set(called)


def test_every_call_is_granted_or_deliberately_not() -> None:
    modules = all_modules()
    granted = literal_actions(policy_statements(modules["exec-permissions"]))
    granted |= literal_actions(policy_statements(modules["bot"], "task_state"))
    # The bot's own DynamoDB calls are checked against the store code in test_dynamodb.py.
    missing = {}
    for action, where in actions_called_by_the_bot().items():
        if action.startswith("dynamodb:") or action in NOT_GRANTED:
            continue
        needed = {action} | ALSO_NEEDS.get(action, set())
        if not needed <= granted:
            missing[action] = sorted(where)
    assert not missing, (
        "AWS calls in bot/ without a grant in infra/exec-permissions or infra/bot (add the action with the "
        f"narrowest resource, or list it in NOT_GRANTED with the reason): {missing}"
    )
