"""Pure pieces of the handlers: dedupe keys, which groups to fetch, view building and redaction."""

from __future__ import annotations

from bot.output.capture import CapturedOutput, CaptureLimits
from bot.output.redact import Redactor
from bot.policy import parse_policy
from bot.runner import ExecResult
from bot.targets import ServiceRef, Target
from handlers.cancel import is_plain_run_cancel
from handlers.commands import dedupe_key, policy_groups
from handlers.execution import ExecOrder
from handlers.replies import files_needed, output_file, result_message, task_view

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
ORDER = ExecOrder(
    request_id="r1",
    requester="U0ALICE",
    channel_id="C1",
    response_url=None,
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


def test_cancel_matcher_leaves_approval_buttons_to_the_approvals_flow() -> None:
    def body(value: str, action: str = "ecs_exec_cancel") -> dict[str, object]:
        return {"actions": [{"action_id": action, "value": value}]}

    assert is_plain_run_cancel(body("r1"))
    assert not is_plain_run_cancel(body("r1|hash"))
    assert not is_plain_run_cancel(body("r1", "ecs_exec_approve"))
    assert not is_plain_run_cancel({})


def test_a_secret_cut_by_the_head_tail_gap_is_redacted_as_a_whole() -> None:
    # Head and tail are separate texts; each ends/starts with a secret that must be redacted.
    data = b"token=ghp_" + b"A1b2" * 9 + b"\n" + b"x\n" * 5000 + b"ghp_" + b"Z9y8" * 9 + b"\n"
    result = result_of(data, CaptureLimits(head_bytes=64, tail_bytes=64, file_bytes=4096))
    assert result.output.truncated
    view = task_view(result, Redactor())
    assert "A1b2A1b2" not in view.output.head and "Z9y8Z9y8" not in view.output.tail
    assert "[redacted:" in view.output.head and "[redacted:" in view.output.tail
    assert view.output.dropped_bytes == result.output.dropped_bytes


def test_a_private_key_spanning_the_gap_never_shows() -> None:
    data = (
        b"-----BEGIN RSA PRIVATE KEY-----\n"
        + b"MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM\n" * 400
        + b"-----END RSA PRIVATE KEY-----\n"
    )
    result = result_of(data, CaptureLimits(head_bytes=256, tail_bytes=256, file_bytes=2048))
    view = task_view(result, Redactor())
    assert "MIIEowIBAAKCAQEA" not in view.output.head + view.output.tail
    _, _, content = output_file(ORDER, result, Redactor())
    assert b"MIIEowIBAAKCAQEA" not in content


def test_short_output_needs_no_file_and_long_output_does() -> None:
    short = result_of(b"hello\n")
    long = result_of(b"".join(b"line %d\n" % i for i in range(2000)))
    assert files_needed([short], None) == [False]
    assert files_needed([long], None) == [True]
    name, title, content = output_file(ORDER, long, None)
    assert name == "web-abc123def456-r1.txt" and "redacted" in title
    assert content.decode().splitlines()[-1] == "line 1999"


def test_a_cancelled_result_says_who_cancelled_it() -> None:
    _, blocks = result_message(
        ORDER, [result_of(b"^C\n", status="cancelled")], cancel_reason="cancelled by <@U0BOB>", redactor=None
    )
    assert blocks[-1]["elements"][0]["text"] == "🛑 cancelled by <@U0BOB>"
