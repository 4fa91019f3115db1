"""Pure pieces of the handlers: dedupe keys, which groups to fetch, the result message.

Output views (cut, redaction, files) are `bot.output.views`'s: tests/output/test_views.py."""

from __future__ import annotations

from bot.output.capture import CapturedOutput, CaptureLimits
from bot.policy import parse_policy
from bot.runner import ExecResult
from bot.runs.intake import policy_groups
from bot.runs.order import RunOrder
from bot.service_ref import ServiceRef
from bot.targets import Target
from handlers.commands import dedupe_key
from handlers.replies import result_message

TARGET = Target(
    "prod",
    "prod",
    "web-nginx",
    "arn:aws:ecs:us-east-1:1:task/prod/abc123def456",
    "abc123def456",
    "nginx",
    "rt-1",
    True,
)
ORDER = RunOrder(
    request_id="r1",
    requester="U0ALICE",
    channel_id="C1",
    service=ServiceRef("web", "prod", "prod", "web-nginx"),
    command="cat x",
    timeout=30,
)


def result_of(data: bytes, limits: CaptureLimits | None = None, status: str = "ok") -> ExecResult:
    out = CapturedOutput.from_bytes(data, limits)
    return ExecResult(TARGET, "cat x", 0, status, 0.5, out, "s-1")  # type: ignore[arg-type]


def test_dedupe_key_prefers_trigger_id_then_the_signed_body() -> None:
    assert dedupe_key({"trigger_id": "t.1"}, "body", "1") == "slack-trigger:t.1"
    a = dedupe_key({}, "text=a", "100")
    assert a == dedupe_key({}, "text=a", "100")
    assert a != dedupe_key({}, "text=a", "101") and a != dedupe_key({}, "text=b", "100")


def test_only_groups_named_by_the_policy_are_fetched() -> None:
    policy = parse_policy(
        {
            "rules": [
                {"name": "a", "groups": ["S0ONE"], "services": ["*"], "commands": [{"argv": ["id"]}]},
                {
                    "name": "b",
                    "users": ["U0X"],
                    "services": ["*"],
                    "commands": [{"argv": ["id"]}],
                    "approval": {"approvers": {"groups": ["S0TWO"]}},
                },
            ]
        }
    )
    assert policy_groups(policy) == {"S0ONE", "S0TWO"}
    assert policy_groups(None) == frozenset()


def test_a_cancelled_result_says_who_cancelled_it() -> None:
    _, blocks = result_message(
        ORDER, [result_of(b"^C\n", status="cancelled")], cancel_reason="cancelled by <@U0BOB>", redactor=None
    )
    assert blocks[-1]["elements"][0]["text"] == "🛑 cancelled by <@U0BOB>"
