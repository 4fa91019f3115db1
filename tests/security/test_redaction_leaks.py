"""Secrets must not leak in pieces: a cut that splits a token leaves a fragment the redactor no longer
recognises (``ghp_A1b2C3…``), yet that fragment is most of the secret."""

from __future__ import annotations

import pytest

from bot.output.redact import Redactor
from bot.policy import evaluate
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


# --- output cut between head and tail: tests/security/test_secrets_at_cuts.py and tests/output/test_views.py

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
