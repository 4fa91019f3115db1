"""The approval message and click parsing (pure): what each state shows, which buttons remain, binding."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

from bot.runs.approvals import request_hash
from bot.runs.executor import run_outcome
from bot.runs.order import Origin, RunOrder, order_from_record
from bot.service_ref import ServiceRef
from bot.store.base import RunState, Vote
from handlers.actions import APPROVE, CANCEL, DENY, Click
from handlers.replies import approval_message
from tests.store.support import START, make_record


def button_value(record) -> str:  # type: ignore[no-untyped-def]
    return f"{record.request_id}|{record.request_hash}"


def _buttons(blocks: list[dict]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _text(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_pending_message_shows_the_request_and_three_buttons() -> None:
    record = make_record(command="grep -c 'a<b' /var/log/x", min_approvals=2, votes=(Vote("U0BOB", START),))
    text, blocks = approval_message(record)
    assert _buttons(blocks) == [APPROVE, DENY, CANCEL]
    assert {e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]} == {
        button_value(record)
    }
    assert button_value(record) == f"req-1|{record.request_hash}"
    approve = blocks[-1]["elements"][0]
    assert approve["style"] == "primary" and "confirm" in approve
    body = _text(blocks)
    assert "grep -c 'a&lt;b' /var/log/x" in body  # escaped for mrkdwn
    assert "may approve: <@U0BOB>, <@U0CAROL>, <!subteam^S0SRE> · 2 needed" in body
    assert "Waiting for 1 more approval ·" in body and "<!date^1795000900^" in body
    assert text.startswith("Approval (pending): web (prod)")


def test_buttons_follow_the_state() -> None:
    expectations = {
        RunState.APPROVED: ([CANCEL], "Approved by <@U0BOB>"),
        RunState.RUNNING: ([CANCEL], "Approved by <@U0BOB> · running…"),
        RunState.DENIED: ([], "Denied by <@U0CAROL>: freeze"),
        RunState.EXPIRED: ([], "Expired at"),
        RunState.CANCELLED: ([], "Cancelled by <@U0CAROL>"),
        RunState.FAILED: ([], "Failed: freeze"),
        RunState.FINISHED: ([], "Approved by <@U0BOB> · finished"),
    }
    for state, (buttons, phrase) in expectations.items():
        record = make_record(
            state=state, votes=(Vote("U0BOB", START),), decided_by="U0CAROL", state_reason="freeze"
        )
        _, blocks = approval_message(record)
        assert _buttons(blocks) == buttons, state
        assert phrase in _text(blocks), state


def test_break_glass_is_shown_and_long_commands_fit() -> None:
    record = make_record(
        command="x" * 5000, votes=(Vote("U0ALICE", START, break_glass=True),), allow_self_approval=True
    )
    _, blocks = approval_message(record)
    assert "*Break-glass*: <@U0ALICE> approved their own request" in _text(blocks)
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")


def test_click_parsing_and_dedupe_key() -> None:
    body = {
        "user": {"id": "U0BOB"},
        "response_url": "http://127.0.0.1:9/response/x",
        "actions": [{"action_id": APPROVE, "value": "req-1|abc", "action_ts": "1795000000.123"}],
    }
    click = Click.from_body(body)
    assert (click.request_id, click.request_hash, click.user_id) == ("req-1", "abc", "U0BOB")
    assert click.dedupe_key == "slack-click:U0BOB:ecs_exec_approve:req-1:1795000000.123"
    other = Click.from_body({**body, "actions": [{**body["actions"][0], "action_ts": "1795000000.456"}]})
    assert other.dedupe_key != click.dedupe_key  # a second physical click is not a replay


def test_an_order_is_rebuilt_from_what_was_approved() -> None:
    ref = ServiceRef("web", "prod", "prod", "web-nginx", container="nginx", shell=True, timeout=60)
    order = RunOrder(request_id="req-1", requester="U0ALICE", channel_id="C0INCIDENT",
                     origin=Origin(reply_url="http://r", thread_ts="1795000000.000001"), service=ref,
                     command="echo hi", timeout=30.0, task="3f2a", reason="why", rule="r")  # fmt: skip
    target = order.target_selector()
    record = make_record(
        command="echo hi",
        reason="why",
        rule="r",
        request_hash=request_hash("prod", "web", "echo hi", target),
        params=order.record_params(),
        votes=(Vote("U0BOB", START),),
        message_ts="1795000000.000100",
    )
    rebuilt = order_from_record(record)
    assert rebuilt.service == ref and rebuilt.task == "3f2a" and rebuilt.container == "nginx"
    assert (rebuilt.timeout, rebuilt.origin.reply_url, rebuilt.approved_by) == (30.0, "http://r", ("U0BOB",))
    assert rebuilt.origin.message_ts == "1795000000.000100"
    assert replace(rebuilt, approved_by=()) == replace(
        order.with_message("1795000000.000100"), container="nginx"
    )
    assert json.loads(str(record.params["target"])) == target


def test_outcome_of_a_run_keeps_the_cancel_reason() -> None:
    ok, nonzero = SimpleNamespace(status="ok"), SimpleNamespace(status="failed")
    assert run_outcome([ok, nonzero], None) == (RunState.FINISHED, None)  # type: ignore[list-item]
    assert run_outcome([ok, SimpleNamespace(status="timeout")], None) == (RunState.FAILED, "timeout")  # type: ignore[list-item]
    assert run_outcome([ok], "cancelled by <@U0ALICE>") == (RunState.CANCELLED, "cancelled by <@U0ALICE>")  # type: ignore[list-item]
    assert run_outcome([SimpleNamespace(status="cancelled")], None) == (RunState.CANCELLED, "cancelled")  # type: ignore[list-item]
