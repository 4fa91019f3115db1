"""The runbook report: the majority and its outliers, and Slack's limits for 10 tasks × 5 steps."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.output.capture import CapturedOutput
from bot.output.redact import Redactor
from bot.output.render import short_task_id
from bot.output.runbook_report import (
    NOT_RUN,
    CellView,
    RunbookReportView,
    outliers,
    render_runbook_report,
    report_file,
    report_text,
    report_view,
)
from bot.runbooks import Extractor

from .slack_limits import assert_valid_message


def _view(cells: list[list[CellView]], *, steps: int | None = None, name: str = "diag") -> RunbookReportView:
    n = steps if steps is not None else len(cells[0])
    return RunbookReportView(
        runbook=name, service="web", environment="prod", requester="U0ALICE", request_id="abc123",
        steps=tuple(f"step{i}" for i in range(n)), commands=tuple(f"cat /tmp/f{i}" for i in range(n)),
        tasks=tuple(f"{t:02d}f2a9c0000000000000000000000{t:02d}" for t in range(len(cells))),
        cells=tuple(tuple(row) for row in cells),
    )


def ok(value: str, code: int = 0) -> CellView:
    return CellView("ok" if code == 0 else "failed", code, 0.2, value)


def test_a_task_that_differs_from_a_strict_majority_is_flagged_on_that_step_only() -> None:
    view = _view([[ok("ok"), ok("0")], [ok("ok"), ok("0")], [ok("degraded"), ok("0")]])
    assert outliers(view) == {2: [0]}


def test_exit_code_and_status_count_as_differences_but_duration_does_not() -> None:
    slow = CellView("ok", 0, 99.0, "x")
    view = _view([[ok("x")], [slow], [ok("x", code=1)], [CellView("timeout", None, 30, "timed out")], [ok("x")]])
    assert outliers(view) == {2: [0], 3: [0]}


@pytest.mark.parametrize("values", [["a", "b"], ["a", "b", "c"], ["a", "a", "b", "b"]])
def test_without_a_strict_majority_nothing_is_flagged(values: list[str]) -> None:
    assert outliers(_view([[ok(v)] for v in values])) == {}


def test_the_report_names_the_task_its_value_and_what_most_tasks_said() -> None:
    view = _view([[ok("ok")], [ok("ok")], [ok("degraded")]])
    text, blocks = render_runbook_report(view)
    assert_valid_message(text, blocks)
    body = str(blocks)
    assert "1 task differs from the majority" in body
    assert "degraded" in body and "(most: exit 0 `ok`)" in body
    assert "file in this thread" in body
    assert "1 of 3 tasks differ" in text


def test_steps_not_run_after_a_cancel_are_shown_and_the_reason_given() -> None:
    gone = CellView(NOT_RUN, None, 0.0, "")
    view = _view([[ok("a"), gone], [ok("a"), gone], [ok("a"), gone]])
    view = RunbookReportView(**{**view.__dict__, "cancel_reason": "cancelled by <@U0BOB>"})
    text, blocks = render_runbook_report(view)
    assert_valid_message(text, blocks, escaped_output=False)
    assert "not run" in str(blocks) and "cancelled by <@U0BOB>" in str(blocks)
    assert text.startswith("🛑")


def _hostile(i: int, width: int) -> str:
    return (f"<!channel> & `x` {i} " * 40)[:width]


@pytest.mark.parametrize("value_width", [1, 40, 200])
def test_ten_tasks_by_five_steps_stay_within_slack_limits_and_point_to_the_file(value_width: int) -> None:
    cells = [[CellView("failed" if (t + s) % 3 == 0 else "ok", (t + s) % 3, 1234.5, _hostile(t * s, value_width))
              for s in range(5)] for t in range(10)]
    view = _view(cells)
    text, blocks = render_runbook_report(view)
    assert_valid_message(text, blocks)
    assert len(blocks) <= 50
    body = str(blocks)
    assert "file in this thread" in body
    assert "<!channel>" not in body  # values are escaped
    assert all(short_task_id(t) in body for t in view.tasks)  # every task has its row


@settings(max_examples=40, deadline=None)
@given(
    tasks=st.integers(1, 10), steps=st.integers(1, 8),
    value=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300),
    long_names=st.booleans(),
)
def test_any_report_up_to_the_caps_is_a_valid_message(tasks: int, steps: int, value: str, long_names: bool) -> None:
    cells = [[ok(value + str(t % 2)) for _ in range(steps)] for t in range(tasks)]
    view = _view(cells)
    if long_names:
        view = RunbookReportView(**{**view.__dict__, "runbook": "r" * 64,
                                    "commands": tuple("x" * 4000 for _ in range(steps))})
    text, blocks = render_runbook_report(view)
    assert_valid_message(text, blocks)
    assert "file in this thread" in str(blocks)


# -- from runner results: values come from redacted output ------------------------------------------------


@dataclass(frozen=True)
class _Target:
    task_id: str


@dataclass(frozen=True)
class _Result:
    target: _Target
    output: CapturedOutput
    status: str = "ok"
    exit_code: int | None = 0
    duration_s: float = 0.1
    error: object = None


@dataclass(frozen=True)
class _Step:
    name: str
    command: str
    extract: Extractor | None = None


@dataclass(frozen=True)
class _StepResults:
    step: _Step
    results: tuple[_Result, ...] | None


@dataclass(frozen=True)
class _Service:
    name: str = "web"
    environment: str = "prod"


@dataclass(frozen=True)
class _Order:
    request_id: str = "req1"
    requester: str = "U0ALICE"
    service: _Service = field(default_factory=_Service)
    approved_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class _RunbookResult:
    targets: tuple[_Target, ...]
    steps: tuple[_StepResults, ...]


def _out(text: str) -> CapturedOutput:
    return CapturedOutput.from_bytes(text.encode())


def test_extractors_and_summaries_read_the_redacted_output_and_the_file_holds_every_output() -> None:
    targets = (_Target("t1"), _Target("t2"), _Target("t3"))
    token = "ghp_" + "A1b2C3d4" * 5
    logs = ["INFO a\nERROR b\nERROR c\n", "INFO a\n", "INFO a\n"]
    steps = (
        _StepResults(_Step("errors", "cat app.log", Extractor(count="ERROR")),
                     tuple(_Result(t, _out(log)) for t, log in zip(targets, logs, strict=True))),
        _StepResults(_Step("token", "cat token", Extractor(regex=r"token=(\S+)")),
                     tuple(_Result(t, _out(f"token={token}\n")) for t in targets)),
        _StepResults(_Step("last", "cat motd"), tuple(_Result(t, _out("first\nlast line\n\n")) for t in targets)),
        _StepResults(_Step("later", "echo never"), None),
    )
    result = _RunbookResult(targets, steps)
    view = report_view(_Order(), result, Redactor(), runbook="diag")
    assert [row[0].value for row in view.cells] == ["2", "0", "0"]
    assert all(token not in row[1].value and "redacted" in row[1].value for row in view.cells)
    assert {row[2].value for row in view.cells} == {"last line"}
    assert {row[3].status for row in view.cells} == {NOT_RUN}
    name, _title, content = report_file(view, result, Redactor())
    text = content.decode()
    assert name == "runbook-diag-web-req1.txt"
    assert text.count("=== step ") == 9 and token not in text
    assert "differs from the majority: task t1 (errors)" in report_text(view)


def test_without_a_majority_the_report_says_so_instead_of_claiming_agreement() -> None:
    text, blocks = render_runbook_report(_view([[ok("a"), ok("x")], [ok("b"), ok("x")], [ok("c"), ok("x")]]))
    assert_valid_message(text, blocks)
    assert "No task stands out; no majority answer on step0." in str(blocks)
    _, agreeing = render_runbook_report(_view([[ok("a")], [ok("a")], [ok("a")]]))
    assert "Every task agrees with the majority" in str(agreeing)
