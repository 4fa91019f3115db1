"""The demo's Slack payloads (as Bolt and the handlers read them) and the interactive keys (pure)."""

from __future__ import annotations

import pytest
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier

from handlers.actions import Click
from standins.demo.interactive import (
    ClickButton,
    Invalid,
    ListRequests,
    Mention,
    Nothing,
    Quit,
    ShowHelp,
    Slash,
    SwitchUser,
    parse_line,
    resolve_user,
)
from standins.demo.session import APPROVE, CANCEL, DENY
from standins.demo.slack_payloads import Channel, block_actions_body, find_button, sign, slash_command_body

CHANNEL = Channel("C0INCIDENT", "incident")
APPROVAL_BLOCKS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Approval needed"}},
    {"type": "actions", "block_id": "approval-abc123", "elements": [
        {"type": "button", "action_id": APPROVE, "text": {"type": "plain_text", "text": "Approve"},
         "value": "abc123|deadbeef", "style": "primary"},
        {"type": "button", "action_id": DENY, "text": {"type": "plain_text", "text": "Deny"},
         "value": "abc123|deadbeef"},
    ]},
]


def test_signature_verifies_like_slack_and_fails_with_another_secret() -> None:
    body = slash_command_body(text="web ls", user_id="U0ALICE", user_name="alice", channel=CHANNEL,
                              response_url="http://127.0.0.1:1/response/x", trigger_id="1.2.t")
    signed = sign("s3cret", body, 1_764_000_000)
    ts, sig = signed.headers["X-Slack-Request-Timestamp"], signed.headers["X-Slack-Signature"]
    clock = type("Clock", (), {"now": staticmethod(lambda: 1_764_000_010.0)})()
    assert SignatureVerifier("s3cret", clock=clock).is_valid(body, ts, sig)
    assert not SignatureVerifier("other", clock=clock).is_valid(body, ts, sig)


def test_slash_command_body_carries_what_the_handler_reads() -> None:
    body = slash_command_body(text="web cat x; rm -rf /", user_id="U0ALICE", user_name="alice", channel=CHANNEL,
                              response_url="http://127.0.0.1:1/response/x", trigger_id="1.2.t")
    parsed = parse_body(body, "application/x-www-form-urlencoded")
    assert parsed["command"] == "/ecs-exec"
    assert parsed["text"] == "web cat x; rm -rf /"
    assert (parsed["user_id"], parsed["channel_id"], parsed["trigger_id"]) == ("U0ALICE", "C0INCIDENT", "1.2.t")


def test_find_button() -> None:
    assert find_button(APPROVAL_BLOCKS, DENY) == ("approval-abc123", APPROVAL_BLOCKS[1]["elements"][1])
    assert find_button(APPROVAL_BLOCKS, CANCEL) is None
    assert find_button(None, APPROVE) is None


def test_block_actions_body_is_a_click_the_approvals_handler_understands() -> None:
    block_id, button = find_button(APPROVAL_BLOCKS, APPROVE)  # type: ignore[misc]
    body = block_actions_body(user_id="U0BOB", user_name="bob", channel=CHANNEL, message_ts="1700000000.000007",
                              message={"text": "Approval", "blocks": APPROVAL_BLOCKS, "channel": "C0INCIDENT"},
                              block_id=block_id, button=button, response_url="http://127.0.0.1:1/response/c",
                              trigger_id="3.4.t", action_ts="1764000000.123456")
    payload = parse_body(body, "application/x-www-form-urlencoded")
    assert payload["type"] == "block_actions"
    assert payload["container"]["message_ts"] == "1700000000.000007"
    assert payload["message"]["blocks"] == APPROVAL_BLOCKS
    click = Click.from_body(payload)
    assert (click.action_id, click.request_id, click.request_hash) == (APPROVE, "abc123", "deadbeef")
    assert (click.user_id, click.action_ts) == ("U0BOB", "1764000000.123456")


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("", Nothing()),
        ("   ", Nothing()),
        ("/ecs-exec web tail -n 5 /var/log/nginx/access.log", Slash("web tail -n 5 /var/log/nginx/access.log")),
        ("web ls -l /var/log/nginx", Slash("web ls -l /var/log/nginx")),
        ("/ecs-exec", Slash("help")),
        ("/ecs-exec   list  ", Slash("list")),
        ("/deploy web", Invalid("Only /ecs-exec is installed in this workspace, not /deploy.")),
        (":as bob", SwitchUser("U0BOB")),
        (":as @Alice", SwitchUser("U0ALICE")),
        (":as U0CAROL", SwitchUser("U0CAROL")),
        (":approve", ClickButton(APPROVE, None)),
        (":approve 61e10dff38c0", ClickButton(APPROVE, "61e10dff38c0")),
        (":deny 61e10dff38c0", ClickButton(DENY, "61e10dff38c0")),
        (":cancel", ClickButton(CANCEL, None)),
        (":approve a b", Invalid("`:approve` takes at most one request id.")),
        (":requests", ListRequests()),
        (":help", ShowHelp()),
        (":quit", Quit()),
        (":q", Quit()),
        (":frobnicate", Invalid("Unknown key `:frobnicate`; type :help.")),
        ("@ecs-exec web tail -n 5 /var/log/nginx/error.log", Mention("web tail -n 5 /var/log/nginx/error.log")),
        ("@ecs-exec filter -c ' 502 '", Mention("filter -c ' 502 '")),
        ("@ecs-exec", Mention("help")),
        ("@bob hi", Invalid("Only @ecs-exec is in this channel, not @bob.")),
    ],
)
def test_parse_line(line: str, parsed: object) -> None:
    assert parse_line(line) == parsed


def test_unknown_user_names_are_refused_with_the_choices() -> None:
    result = parse_line(":as mallory")
    assert isinstance(result, Invalid)
    assert "alice, bob" in result.message
    assert isinstance(parse_line(":as"), Invalid)


def test_resolve_user() -> None:
    assert resolve_user("BOB") == "U0BOB"
    assert resolve_user("W0ENTERPRISE1") == "W0ENTERPRISE1"
    assert resolve_user("u0lower") is None
