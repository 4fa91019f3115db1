"""What follow-ups look like: the Filter button on a result, the form, and answers within Slack's limits."""

from __future__ import annotations

import json

import pytest

from bot.output.capture import CapturedOutput
from bot.output.filters import MAX_SHOWN_BYTES, OutputFilter, apply_filter
from bot.output.followup_render import (
    FILTER_ACTION,
    FILTER_MODAL,
    FilterAnswerView,
    FilterPartView,
    filter_file_text,
    render_filter_answer,
    render_filter_modal,
)
from bot.runner import ExecResult
from bot.targets import Target
from handlers import replies
from tests.output.slack_limits import assert_valid_message
from tests.runs.support import order


def part(lines: list[str], spec: OutputFilter, task_id: str = "3f2a9c0d1e2f") -> FilterPartView:
    r = apply_filter(lines, spec)
    return FilterPartView(task_id=task_id, container="nginx", matched=r.matched, total_lines=r.total_lines,
                          shown=r.shown, not_shown=r.not_shown, byte_bound=r.byte_bound)


def view(*parts: FilterPartView, filter_text: str = "' 502 '", count_only: bool = False) -> FilterAnswerView:
    return FilterAnswerView(request_id="abc123def456", service="web", environment="prod",
                            command="cat /var/log/nginx/access.log", filter_text=filter_text, count_only=count_only,
                            user="U0BOB", parts=parts)


def test_a_short_answer_shows_every_matching_line_and_needs_no_file() -> None:
    (text, blocks), needs_file = render_filter_answer(view(part(["a 502 x", "b 200", "c 502 <y>"], OutputFilter(" 502 "))))
    assert_valid_message(text, blocks)
    shown = json.dumps(blocks)
    assert "2 of 3 lines match" in shown and "a 502 x" in shown and "c 502 &lt;y&gt;" in shown
    assert "<@U0BOB>" in shown and "abc123def456" in shown and "nothing was run again" in shown
    assert not needs_file


def test_a_long_answer_fits_slack_and_points_at_the_file() -> None:
    lines = [f"10.0.0.{n % 250} - - GET /api/{n} 502 & more" for n in range(40_000)]
    answer = view(part(lines, OutputFilter("502", head=10_000)))
    (text, blocks), needs_file = render_filter_answer(answer)
    assert_valid_message(text, blocks)
    assert needs_file and "attached below" in json.dumps(blocks)
    assert "beyond the lines asked for" in json.dumps(blocks)
    assert len(filter_file_text(answer).encode()) <= MAX_SHOWN_BYTES


def test_a_count_shows_no_lines_and_a_fan_out_shows_each_task() -> None:
    lines = ["x 502", "y 200"]
    (text, blocks), needs_file = render_filter_answer(
        view(*(part(lines, OutputFilter("502", count_only=True), f"task{n:08d}") for n in range(9)), count_only=True)
    )
    assert_valid_message(text, blocks)
    assert "9 of 18 lines match" in text and "x 502" not in json.dumps(blocks) and not needs_file
    (text, blocks), needs_file = render_filter_answer(
        view(*(part(lines * 200, OutputFilter("502"), f"task{n:08d}") for n in range(9)))
    )
    assert_valid_message(text, blocks)
    assert needs_file and "3 more tasks" in json.dumps(blocks)


def test_the_pattern_is_shown_escaped() -> None:
    (text, blocks), _ = render_filter_answer(view(part(["<!channel>"], OutputFilter("<!channel>")),
                                                  filter_text="'<!channel>'"))
    assert "<!channel>" not in text + json.dumps(blocks)


def test_the_form_has_a_pattern_switches_and_what_to_show() -> None:
    modal = render_filter_modal("cat /var/log/nginx/access.log", '{"request_id": "abc"}')
    assert modal["callback_id"] == FILTER_MODAL and modal["private_metadata"] == '{"request_id": "abc"}'
    assert [b.get("block_id") for b in modal["blocks"][1:]] == ["filter_pattern", "filter_options", "filter_show",
                                                               "filter_lines"]
    assert len(modal["title"]["text"]) <= 24
    with pytest.raises(ValueError):
        render_filter_modal("x", "m" * 3001)


def _result(output: bytes) -> ExecResult:
    target = Target("prod", "prod", "web-nginx", "arn:aws:ecs:us-east-1:1:task/prod/3f2a9c", "3f2a9c", "nginx", "r",
                    True)
    return ExecResult(target=target, command="cat x", exit_code=0, status="ok", duration_s=1.0,
                      output=CapturedOutput.from_bytes(output), session_id="s")


def test_the_result_offers_the_filter_button_only_when_kept() -> None:
    text, blocks = replies.result_message(order(), [_result(b"hello\n")], cancel_reason=None, redactor=None,
                                          filterable=True)
    assert_valid_message(text, blocks)
    [button] = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == FILTER_ACTION and button["value"] == "req-1"
    _, plain = replies.result_message(order(), [_result(b"hello\n")], cancel_reason=None, redactor=None)
    assert FILTER_ACTION not in json.dumps(plain)
