"""Findings in the approvals flow (bot/runs/approvals.py, handlers/replies.py).

The approval request posted in the channel once showed the command and the reason unredacted; every other
message went through the redactor. This pins the fix.
"""

from __future__ import annotations

import json
import time

from bot.runs.approvals import request_hash
from bot.store.base import RunRecord
from handlers.replies import approval_message

TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "XyZ123"


def _record(command: str, reason: str = "") -> RunRecord:
    target = {"cluster": "prod", "service": "web", "container": "app", "task": None, "all_tasks": False}
    return RunRecord(
        request_id="req1", requester="U0ALICE", channel="C0INCIDENT", service="web", environment="prod",
        command=command, request_hash=request_hash("prod", "web", command, target), reason=reason,
        rule="r", approver_users=("U0BOB",), approver_groups=(), min_approvals=1, allow_self_approval=False,
        created_at=time.time(), expires_at=time.time() + 900, params={"target": json.dumps(target)},
    )


def test_the_approval_message_redacts_the_command_and_the_reason() -> None:
    text, blocks = approval_message(_record(f"curl -H 'Authorization: token {TOKEN}' http://x",
                                            reason=f"token={TOKEN}"))
    assert TOKEN[4:20] not in text + json.dumps(blocks)
