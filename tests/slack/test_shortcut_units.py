"""Pure pieces of the "Run on ECS…" shortcut: the modal within Slack's limits, a submission as command text."""

from __future__ import annotations

import json

import pytest

from bot.commands import ExecRequest, parse_command_text
from bot.output.render import render_run_modal
from handlers.shortcuts import ModalPlace, Submission


def test_the_modal_keeps_slacks_limits() -> None:
    services = [(f"svc{n:03d}", f"svc{n:03d} ({'x' * 100})") for n in range(150)]
    view = render_run_modal(services, ModalPlace(channel="C1", thread_ts="1.2").model_dump_json())
    [select] = [b["element"] for b in view["blocks"] if b["block_id"] == "service"]
    assert len(select["options"]) == 100 and all(len(o["text"]["text"]) <= 75 for o in select["options"])
    assert len(view["title"]["text"]) <= 24 and len(view["blocks"]) <= 100
    with pytest.raises(ValueError):
        render_run_modal(services, "x" * 3001)


def body(command: str, reason: str | None) -> dict:
    return {
        "user": {"id": "U0ALICE"},
        "view": {
            "id": "V1", "private_metadata": json.dumps({"channel": "C1", "thread_ts": "1.2"}),
            "state": {"values": {
                "service": {"service": {"selected_option": {"value": "web"}}},
                "command": {"command": {"value": command}},
                "reason": {"reason": {"value": reason}},
            }},
        },
    }


def test_a_submission_reads_as_the_slash_command_text_with_the_reason_quoted() -> None:
    sub = Submission.from_body(body("  tail -n 5 /var/log/nginx/error.log ", "INC-9: it's 502s"))
    parsed = parse_command_text(sub.text)
    assert isinstance(parsed, ExecRequest)
    assert (parsed.service, parsed.command, parsed.reason) == (
        "web", "tail -n 5 /var/log/nginx/error.log", "INC-9: it's 502s",
    )
    assert sub.place == ModalPlace(channel="C1", thread_ts="1.2")
    assert Submission.from_body(body("id", "  ")).text == "web id"
