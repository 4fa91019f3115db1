"""Secrets must not leak in pieces: a cut that splits a token leaves a fragment the redactor no longer
recognises (``ghp_A1b2C3…``), yet that fragment is most of the secret."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bot.output.capture import CapturedOutput, CaptureLimits
from bot.output.clean import clean_terminal_output
from bot.output.redact import Redactor
from bot.policy import evaluate
from handlers import replies
from tests.policy.rulesets import ONCALL_REQUEST, permissive

TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "XyZ123"  # a GitHub PAT shape: ghp_ + 36
BODY = TOKEN[4:]
REDACTOR = Redactor()


def fragments(text: str, secret: str = BODY, size: int = 6) -> list[str]:
    """Every ``size``-character piece of the secret's random part that appears in ``text``."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1) if secret[i : i + size] in text]


# --- refusal sentences quote the command, cut to a length -------------------------------------------------

@pytest.mark.parametrize("command", [
    # the part after `&&` is quoted up to 60 characters: the cut fell inside the token
    f"cat /var/log/nginx/x && echo {'a' * 35} {TOKEN}",
    f"cat /var/log/nginx/x && echo {'a' * 45} {TOKEN} more",
    # the text before a refused part is quoted from its end (40 characters)
    f"cat /var/log/nginx/x {TOKEN}{'b' * 10} ; id",
    f"echo {TOKEN}b\nid",
    # "matches none of the patterns" quotes up to 80 characters
    f"whoami {'c' * 60} {TOKEN}",
])
def test_refusal_reasons_never_carry_part_of_a_token(command: str) -> None:
    decision = evaluate(permissive(), **{**ONCALL_REQUEST, "command": command})
    assert not decision.allowed
    redacted = REDACTOR.redact(decision.reason)  # what the audit record, log line and channel get
    assert fragments(redacted) == [], redacted


# --- output cut between head and tail ---------------------------------------------------------------------

def _result(data: bytes, limits: CaptureLimits) -> Any:
    out = CapturedOutput.from_bytes(data, limits)
    return SimpleNamespace(
        output=out, head_text=clean_terminal_output(out.head), tail_text=clean_terminal_output(out.tail),
        target=SimpleNamespace(task_id="0123456789abcdef", container="app"), status="ok", exit_code=0,
        duration_s=1.0, error=None, note=None, missing_messages=0,
    )


@pytest.mark.parametrize("offset", [6, 12, 20, 33])
def test_a_token_split_by_the_head_cut_is_not_shown_in_part(offset: int) -> None:
    limits = CaptureLimits(head_bytes=64 * 1024, tail_bytes=64 * 1024, file_bytes=1024 * 1024)
    # one long line (no newline near the cut, so the capture cuts inside it) with the token at the cut
    data = b"x" * (64 * 1024 - offset) + f" {TOKEN} ".encode() + b"y" * (300 * 1024) + b"\n"
    view = replies.task_view(_result(data, limits), REDACTOR)
    assert fragments(view.output.head) == [] and fragments(view.output.tail) == []


@pytest.mark.parametrize("offset", [6, 20, 33])
def test_a_token_split_by_the_tail_cut_is_not_shown_in_part(offset: int) -> None:
    limits = CaptureLimits(head_bytes=16 * 1024, tail_bytes=64 * 1024, file_bytes=1024 * 1024)
    end = b"z" * (64 * 1024) + b"\n"
    data = b"x" * (300 * 1024) + f" {TOKEN} ".encode()[: offset] + f" {TOKEN} ".encode()[offset:] + end
    # the tail starts 64 KiB + 1 before the end: put the token across that point
    tail_start = len(data) - len(end)
    data = data[: tail_start - offset] + f" {TOKEN} ".encode() + data[tail_start - offset + len(TOKEN) + 2 :]
    view = replies.task_view(_result(data, limits), REDACTOR)
    assert fragments(view.output.head) == [] and fragments(view.output.tail) == []


def test_the_uploaded_file_does_not_carry_a_cut_token_in_part() -> None:
    limits = CaptureLimits(head_bytes=1024, tail_bytes=1024, file_bytes=64 * 1024)
    data = b"x" * (63 * 1024 - 30) + f" {TOKEN} ".encode() + b"y" * (300 * 1024) + b"\n"
    order = SimpleNamespace(service=SimpleNamespace(name="web"), request_id="req1")
    _name, _title, content = replies.output_file(order, _result(data, limits), REDACTOR)  # type: ignore[arg-type]
    assert fragments(content.decode()) == []


def test_whole_lines_at_a_clean_cut_are_kept() -> None:
    limits = CaptureLimits(head_bytes=1024, tail_bytes=1024, file_bytes=64 * 1024)
    data = b"".join(f"line {i:05d} ok\n".encode() for i in range(2000))
    view = replies.task_view(_result(data, limits), REDACTOR)
    assert view.output.tail.startswith("line ") and view.output.head.rstrip().endswith("ok")


# --- the audit channel line is mrkdwn: user text must not become mentions or links -----------------------

@pytest.mark.parametrize("command", [
    "cat /var/log/nginx/x <!channel>",
    "cat /var/log/nginx/x `<!everyone>` <https://evil.example/login|click to re-authenticate>",
    "echo `<@U0BOB>` approved",
])
def test_a_refused_command_cannot_ping_or_link_from_the_audit_channel(command: str) -> None:
    import time as _time

    from bot.audit import AuditKind, summary_line
    from bot.commands import parse_command_text
    from bot.store.base import AuditEvent

    # Slack delivers a typed "<" as "&lt;"; the parser unescapes it, so this is what gets audited
    slack_text = "web " + command.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    typed = parse_command_text(slack_text).command  # type: ignore[union-attr]
    assert typed == command
    decision = evaluate(permissive(), **{**ONCALL_REQUEST, "command": typed})
    assert not decision.allowed
    event = AuditEvent(event_id="e1", request_id="r1", kind=AuditKind.REFUSED.value, at=_time.time(),
                       user="U0MALLORY", requester="U0MALLORY", channel="C1", service="web",
                       environment="prod", command=typed, details={"reason": decision.reason})
    line = summary_line(event) or ""
    assert "<!" not in line and "<http" not in line and "<@U0BOB>" not in line, line
    assert line.startswith(":no_entry: refused <@U0MALLORY>:")  # our own mention still works
