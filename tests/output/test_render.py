"""Slack rendering: content of each message, and every message within Slack's limits (property tests)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import PolicyDenied, TargetError, UsageError
from bot.output.render import (
    APPROVE_ACTION,
    CANCEL_ACTION,
    DENY_ACTION,
    ApprovalView,
    OutputView,
    RunView,
    TaskResultView,
    code_block,
    escape,
    fanout_cuts,
    render_approval,
    render_doctor,
    render_error,
    render_help,
    render_internal_error,
    render_list,
    render_result,
    render_running,
    result_cut,
)

from .slack_limits import assert_valid_message

RUN = RunView(service="web", environment="prod", command="cat /var/log/nginx/access.log", requester="U0ALICE",
              approved_by=("U0BOB",))


def _result(text: str = "hello\n", *, status: str = "ok", exit_code: int | None = 0, tail: str = "",
            dropped_lines: int = 0, dropped_bytes: int = 0, task: str = "3f2a9c0d1e2f4a5b6c7d8e9f00e1",
            error: str | None = None) -> TaskResultView:
    return TaskResultView(task_id=task, container="nginx", status=status, exit_code=exit_code,  # type: ignore[arg-type]
                          duration_s=1.4, output=OutputView(text, tail, dropped_lines, dropped_bytes), error=error)


def _all_text(blocks: list[dict]) -> str:
    parts = []
    for b in blocks:
        if isinstance(b.get("text"), dict):
            parts.append(b["text"]["text"])
        parts += [e.get("text", "") for e in b.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


def test_single_result_shows_what_the_channel_needs() -> None:
    text, blocks = render_result(RUN, [_result("10.0.3.7 GET /\n")])
    assert_valid_message(text, blocks)
    body = _all_text(blocks)
    assert body.startswith("✅ *web* (prod) · exit 0 · 1.4 s\n`cat /var/log/nginx/access.log`")
    assert "task 3f2a9c…e1 · container nginx · by <@U0ALICE> · approved by <@U0BOB>" in body
    assert "```\n10.0.3.7 GET /\n```" in body
    assert "not shown" not in body and "📎" not in body
    assert text.startswith("✅ web (prod) · exit 0")
    assert not result_cut(_result("10.0.3.7 GET /\n"))


@pytest.mark.parametrize(("status", "exit_code", "expected"), [
    ("ok", 0, "✅"), ("failed", 2, "❌"), ("timeout", None, "⏱"), ("error", None, "⚠️"), ("cancelled", None, "🛑"),
])
def test_status_emoji(status: str, exit_code: int | None, expected: str) -> None:
    text, blocks = render_result(RUN, [_result(status=status, exit_code=exit_code, error="The task stopped.")])
    assert text.startswith(expected) and blocks[0]["text"]["text"].startswith(expected)
    if status == "failed":
        assert "exit 2" in text
    if status == "error":
        assert "The task stopped." in _all_text(blocks)


def test_unknown_exit_status_and_empty_output() -> None:
    text, blocks = render_result(RUN, [_result("", exit_code=None)])
    assert "exit status unknown" in text and "(no output)" in _all_text(blocks)


def test_long_output_keeps_head_and_tail_and_counts_the_rest() -> None:
    lines = [f"line {i:04d} & <tag>\n" for i in range(2000)]
    text, blocks = render_result(RUN, [_result("".join(lines))])
    assert_valid_message(text, blocks)
    body = _all_text(blocks)
    shown = re.findall(r"line (\d{4})", body)
    gap = re.search(r"··· ([\d,]+) lines \(([\d.,]+ KB)\) not shown ···", body)
    assert gap is not None
    assert len(shown) + int(gap.group(1).replace(",", "")) == 2000
    assert shown[0] == "0000" and shown[-1] == "1999"
    assert "&amp; &lt;tag&gt;" in body and "📎 full output (redacted) in the thread" in body
    assert result_cut(_result("".join(lines)))


def test_capture_cut_adds_the_dropped_lines() -> None:
    r = _result("first\n" * 10, tail="last\n" * 10, dropped_lines=5000, dropped_bytes=812_000)
    text, blocks = render_result(RUN, [r])
    assert_valid_message(text, blocks)
    assert "··· 5,000 lines (793 KB) not shown ···" in _all_text(blocks)


def test_triple_backticks_and_entities_in_output() -> None:
    out = "```\nrm -rf /\n```\n&amp; is literal\n`````\n"
    text, blocks = render_result(RUN, [_result(out)])
    assert_valid_message(text, blocks)
    body = blocks[2]["text"]["text"]
    assert body.count("```") == 2 and "&amp;amp; is literal" in body


def test_a_command_with_backticks_is_shown_in_a_code_block() -> None:
    run = RunView(service="web", environment="prod", command="echo `date` > /tmp/x", requester="U1")
    text, blocks = render_result(run, [_result()])
    assert_valid_message(text, blocks)
    assert "```\necho `\u200bdate` &gt; /tmp/x\n```" not in blocks[0]["text"]["text"]  # single backticks stay
    assert "```\necho `date` &gt; /tmp/x\n```" in blocks[0]["text"]["text"]


def test_one_huge_line_is_cut_within_the_line() -> None:
    text, blocks = render_result(RUN, [_result("&" * 50_000)])
    assert_valid_message(text, blocks)
    assert "…" in _all_text(blocks)


def test_the_end_of_a_long_line_is_never_shown_alone() -> None:
    # One line longer than a section: its start is shown, its rest counted, never shown as a "tail".
    line = "".join(f"{i:05d} " for i in range(1000)) + "\n"
    text, blocks = render_result(RUN, [_result(line)])
    assert_valid_message(text, blocks)
    body = _all_text(blocks)
    assert "00000 00001" in body and "00999" not in body
    assert "··· 1 line (" in body
    # A long last line after short ones: hidden whole, not cut to its end.
    text, blocks = render_result(RUN, [_result("short\n" * 3 + "y" * 9000 + "\n")])
    body = _all_text(blocks)
    assert "short" in body and "yyy" not in body and "··· 1 line (8.8 KB) not shown ···" in body


def test_the_tail_keeps_whole_lines() -> None:
    lines = [f"{i:04d} " + "w" * (i % 97) + "\n" for i in range(3000)]
    _, blocks = render_result(RUN, [_result("".join(lines))])
    code = [b["text"]["text"] for b in blocks if b.get("type") == "section" and "```" in b["text"]["text"]]
    head, tail = (c.removeprefix("```\n").removesuffix("\n```") for c in code)
    assert all(line + "\n" in lines for line in head.splitlines() + tail.splitlines())


def test_fanout_groups_per_task_worst_first_and_summarises_the_rest() -> None:
    results = [_result(f"out {i}\n" * 300, task=f"task{i:030d}", status="ok" if i % 7 else "failed",
                       exit_code=0 if i % 7 else 1) for i in range(30)]
    text, blocks = render_result(RUN, results)
    assert_valid_message(text, blocks)
    body = _all_text(blocks)
    assert "30 tasks" in text and "❌ 5" in text and "✅ 25" in text
    assert blocks[2]["text"]["text"].startswith("❌ task")
    assert "… and 18 more tasks" in body and "📎" in body
    cuts = fanout_cuts(results)
    assert len(cuts) == 30 and all(cuts)


def test_small_fanout_needs_no_file() -> None:
    results = [_result("ok\n", task=f"t{i}") for i in range(3)]
    text, blocks = render_result(RUN, results)
    assert_valid_message(text, blocks)
    assert fanout_cuts(results) == [False, False, False] and "📎" not in _all_text(blocks)


def test_running_message_has_a_cancel_button() -> None:
    text, blocks = render_running(RUN, ["arn:aws:ecs:us-east-1:1:task/prod/3f2a9c0d1e2f"], run_id="req-123")
    assert_valid_message(text, blocks)
    button = blocks[-1]["elements"][0]
    assert (button["action_id"], button["value"], button["style"]) == (CANCEL_ACTION, "req-123", "danger")
    assert "confirm" in button
    with pytest.raises(ValueError):
        render_running(RUN, ["t"], run_id="x" * 2001)


@pytest.mark.parametrize(("error", "emoji"), [
    (PolicyDenied("No rule lets you run `rm` on web.", fix="Ask in #ops-approvals."), "⛔"),
    (UsageError("Missing the command.", fix="Example: /ecs-exec web ls"), "❓"),
    (TargetError("Exec is not enabled on web.", fix="Run aws ecs update-service … --enable-execute-command."), "⚠️"),
])
def test_errors_are_one_sentence_and_the_fix(error, emoji: str) -> None:  # type: ignore[no-untyped-def]
    text, blocks = render_error(error)
    assert_valid_message(text, blocks)
    assert text.startswith(emoji) and error.fix in text
    assert blocks[0]["text"]["text"] == f"{emoji} *{escape(error.message)}*\n{escape(error.fix)}".replace("``", "`\u200b`")


def test_internal_error_names_the_reference() -> None:
    text, blocks = render_internal_error("req-42")
    assert "req-42" in text
    assert_valid_message(text, blocks)


APPROVAL = ApprovalView(request_id="apr-1", requester="U0ALICE", service="web", environment="prod",
                        command="cat /etc/nginx/nginx.conf", expires_at=1_764_150_000,
                        approver_users=("U0BOB",), approver_groups=("S0SRE",), reason="incident 42")


def test_approval_request_pending() -> None:
    text, blocks = render_approval(APPROVAL)
    assert_valid_message(text, blocks)
    body = _all_text(blocks)
    for expected in ("<@U0ALICE>", "*web* (prod)", "`cat /etc/nginx/nginx.conf`", "incident 42", "<@U0BOB>",
                     "<!subteam^S0SRE>", "<!date^1764150000^"):
        assert expected in body
    buttons = blocks[-1]["elements"]
    assert [b["action_id"] for b in buttons] == [APPROVE_ACTION, DENY_ACTION]
    assert all(b["value"] == "apr-1" for b in buttons)
    assert "confirm" in buttons[0] and "confirm" not in buttons[1]


@pytest.mark.parametrize("state", ["approved", "running", "finished", "denied", "expired", "cancelled"])
def test_approval_later_states_have_no_buttons(state: str) -> None:
    from dataclasses import replace

    text, blocks = render_approval(replace(APPROVAL, state=state, decided_by=("U0BOB",)))  # type: ignore[arg-type]
    assert_valid_message(text, blocks)
    assert all(b["type"] != "actions" for b in blocks)
    assert state in text
    if state not in ("expired",):
        assert "<@U0BOB>" in _all_text(blocks)


def test_approval_request_id_must_fit_a_button_value() -> None:
    from dataclasses import replace

    with pytest.raises(ValueError):
        render_approval(replace(APPROVAL, request_id="r" * 2001))


def test_help_list_and_doctor() -> None:
    from bot.commands import HELP_TEXT
    from bot.doctor import Check, DoctorReport

    text, blocks = render_help(HELP_TEXT)
    assert_valid_message(text, blocks, escaped_output=False)
    text, blocks = render_list([f"`cat /var/log/app{i}/*` on web (prod) & <more>" for i in range(400)])
    assert_valid_message(text, blocks)
    assert "&amp; &lt;more&gt;" in _all_text(blocks) and "more" in _all_text(blocks)
    text, blocks = render_list([])
    assert_valid_message(text, blocks) or "deny by default" in text
    report = DoctorReport(title="doctor: web (prod)", checks=[
        Check("exec enabled", "green", "enableExecuteCommand is true"),
        Check("task role", "red", "ssmmessages:CreateDataChannel is denied", fix="Allow the four ssmmessages actions."),
    ])
    text, blocks = render_doctor(report)
    assert_valid_message(text, blocks)
    body = _all_text(blocks)
    assert "🔴 *task role*" in body and "fix: Allow the four ssmmessages actions." in body
    assert "will not work" in body


def test_code_block_of_empty_text_is_still_valid() -> None:
    assert code_block("").count("```") == 2


# -- properties: any output renders within every limit -------------------------------------------------

_CHARS = st.sampled_from(list("ab &<>`\n\t|*_~é日") + ["😀", "&amp;", "```", "\r"])
_TEXT = st.lists(_CHARS, max_size=4000).map("".join)
_LONG_TEXT = st.builds(lambda unit, n: unit * n, _TEXT, st.integers(min_value=1, max_value=50))


@settings(max_examples=150, deadline=None)
@given(head=st.one_of(_TEXT, _LONG_TEXT), tail=_TEXT, dropped=st.integers(min_value=0, max_value=10**9),
       status=st.sampled_from(["ok", "failed", "timeout", "error", "cancelled"]),
       command=st.lists(_CHARS, min_size=1, max_size=3000).map("".join))
def test_any_single_result_renders_within_limits(head: str, tail: str, dropped: int, status: str,
                                                 command: str) -> None:
    run = RunView(service="web&co", environment="<prod>", command=command, requester="U1")
    out = _result(head, status=status, tail=tail if dropped else "", dropped_lines=dropped // 80,
                  dropped_bytes=dropped, error="boom & <bust>")
    text, blocks = render_result(run, [out])
    assert_valid_message(text, blocks)


@settings(max_examples=40, deadline=None)
@given(outputs=st.lists(st.one_of(_TEXT, _LONG_TEXT), min_size=2, max_size=60))
def test_any_fanout_renders_within_limits(outputs: list[str]) -> None:
    results = [_result(o, task=f"task-{i}", status="failed" if i % 3 == 0 else "ok") for i, o in enumerate(outputs)]
    text, blocks = render_result(RUN, results)
    assert_valid_message(text, blocks)
    assert len(fanout_cuts(results)) == len(results)


@settings(max_examples=60, deadline=None)
@given(command=st.lists(_CHARS, min_size=1, max_size=5000).map("".join), reason=_TEXT,
       state=st.sampled_from(["pending", "approved", "running", "finished", "denied", "expired", "cancelled"]))
def test_any_approval_renders_within_limits(command: str, reason: str, state: str) -> None:
    view = ApprovalView(request_id="apr-" + "9" * 60, requester="U1", service="svc<&>", environment="env",
                        command=command, expires_at=2_000_000_000, reason=reason or None, state=state,  # type: ignore[arg-type]
                        decided_by=("U2", "U3"), approver_users=tuple(f"U{i}" for i in range(40)))
    text, blocks = render_approval(view)
    assert_valid_message(text, blocks)


@settings(max_examples=40, deadline=None)
@given(command=st.lists(_CHARS, min_size=1, max_size=5000).map("".join),
       tasks=st.lists(st.text(min_size=1, max_size=80), min_size=1, max_size=40),
       lines=st.lists(_TEXT, max_size=300))
def test_running_and_list_render_within_limits(command: str, tasks: list[str], lines: list[str]) -> None:
    run = RunView(service="web", environment="prod", command=command, requester="U1")
    assert_valid_message(*render_running(run, tasks, run_id="r-1"))
    assert_valid_message(*render_list(lines))
    assert_valid_message(*render_error(UsageError(command[:500], fix=command[-300:])))
