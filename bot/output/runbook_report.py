"""A runbook's report: one task × step table, the tasks that differ from the majority, one file. Pure.

The table is what an incident needs first: which task is not like the others. Each cell is the step's
status, exit code, duration and a value: the step's extractor applied to its redacted output, else the
output's last non-empty line. A task is flagged on a step when its (status, exit code, value) differs
from what a strict majority of tasks returned; with no strict majority (two tasks, or all different)
nothing is flagged, since there is no "normal" to differ from.

Slack's limits (see render.py's docstring): at most 50 blocks, 3,000 characters a section, ~12,000 in all.
The table is cut into sections at row boundaries and its cells are narrowed to fit; tasks beyond what
fits are counted, and every output is in the file posted in the thread, which the message says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.output.redact import Redactor
from bot.output.render import (
    MAX_BLOCKS,
    MESSAGE_BUDGET,
    SECTION_LIMIT,
    STATUS_EMOJI,
    Block,
    SlackMessage,
    _context,
    _fallback,
    _prose,
    _section,
    _user,
    code_block,
    escape,
    human_duration,
    inline_code,
    short_task_id,
    slack_len,
)
from bot.output.views import ExecResultLike, full_output_text

NOT_RUN = "not run"
_CELL_MIN, _CELL_MAX = 10, 24  # characters of a cell's value column
_TASK_COL = 10  # short_task_id is at most 10 characters
_FLAGS_SHOWN = 10  # tasks listed in the "differs" section; the rest are counted


# -- views -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellView:
    status: str  # ok | failed | timeout | cancelled | error | "not run"
    exit_code: int | None
    duration_s: float
    value: str  # extracted value or last output line, redacted, one line

    @property
    def key(self) -> tuple[str, int | None, str]:
        """What is compared across tasks (never the duration: it always differs)."""
        return self.status, self.exit_code, self.value


@dataclass(frozen=True)
class RunbookReportView:
    runbook: str
    service: str
    environment: str
    requester: str
    request_id: str
    steps: tuple[str, ...]  # step names
    commands: tuple[str, ...]  # each step's command (redacted)
    tasks: tuple[str, ...]  # task ids
    cells: tuple[tuple[CellView, ...], ...]  # [task][step]
    approved_by: tuple[str, ...] = ()
    cancel_reason: str | None = None


class _Step(Protocol):  # bot.runbooks.PlannedStep
    @property
    def name(self) -> str: ...
    @property
    def command(self) -> str: ...
    @property
    def extract(self) -> Any: ...  # bot.runbooks.Extractor | None (`.apply(text) -> str`)


class _StepResults(Protocol):
    @property
    def step(self) -> Any: ...  # a _Step
    @property
    def results(self) -> Sequence[ExecResultLike] | None: ...


class _RunbookResult(Protocol):  # bot.runs.runbook.RunbookResult
    @property
    def targets(self) -> Sequence[Any]: ...
    @property
    def steps(self) -> Sequence[_StepResults]: ...


class _Order(Protocol):  # bot.runs.order.RunOrder
    @property
    def request_id(self) -> str: ...
    @property
    def requester(self) -> str: ...
    @property
    def service(self) -> Any: ...  # ServiceRef: .name, .environment
    @property
    def approved_by(self) -> tuple[str, ...]: ...


def _one_line(text: str, limit: int = 200) -> str:
    for line in reversed(text.splitlines()):
        line = " ".join(line.split())
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def cell_view(step: _Step, result: ExecResultLike, redactor: Redactor) -> CellView:
    """One cell, from redacted text only: an extractor never sees (or shows) a secret."""
    if result.status in ("ok", "failed"):
        text = full_output_text(result.output, redactor)
        value = step.extract.apply(text) if step.extract is not None else _one_line(text)
    else:
        error = result.error
        value = redactor.redact(_one_line(error.user_text() if error is not None else str(result.status)))
    return CellView(str(result.status), result.exit_code, result.duration_s, value)


def report_view(order: _Order, result: _RunbookResult, redactor: Redactor, *, runbook: str,
                cancel_reason: str | None = None) -> RunbookReportView:
    tasks = tuple(t.task_id for t in result.targets)
    columns: list[tuple[CellView, ...]] = []
    for s in result.steps:
        if s.results is None:
            columns.append(tuple(CellView(NOT_RUN, None, 0.0, "") for _ in tasks))
        else:
            columns.append(tuple(cell_view(s.step, r, redactor) for r in s.results))
    cells = tuple(tuple(col[i] for col in columns) for i in range(len(tasks)))
    return RunbookReportView(
        runbook=runbook, service=order.service.name, environment=order.service.environment,
        requester=order.requester, request_id=order.request_id,
        steps=tuple(s.step.name for s in result.steps),
        commands=tuple(redactor.redact(s.step.command) for s in result.steps),
        tasks=tasks, cells=cells, approved_by=order.approved_by, cancel_reason=cancel_reason,
    )


# -- the majority ------------------------------------------------------------------------------------------


def outliers(view: RunbookReportView) -> dict[int, list[int]]:
    """Task index → the step indexes where it differs from a strict majority of tasks."""
    flagged: dict[int, list[int]] = {}
    for step in range(len(view.steps)):
        keys = [row[step].key for row in view.cells]
        if not keys:
            continue
        (common, count), = Counter(keys).most_common(1)
        if count * 2 <= len(keys):
            continue  # no strict majority: nothing is "normal"
        for task, key in enumerate(keys):
            if key != common:
                flagged.setdefault(task, []).append(step)
    return flagged


def majority_value(view: RunbookReportView, step: int) -> CellView | None:
    keys = Counter(row[step].key for row in view.cells)
    if not keys:
        return None
    common, count = keys.most_common(1)[0]
    if count * 2 <= len(view.cells):
        return None
    return next(row[step] for row in view.cells if row[step].key == common)


# -- rendering ---------------------------------------------------------------------------------------------


def _cell_text(cell: CellView, width: int) -> str:
    if cell.status == NOT_RUN:
        text = "· not run"
    else:
        code = "?" if cell.exit_code is None else str(cell.exit_code)
        if cell.status in ("timeout", "cancelled", "error"):
            code = cell.status
        text = f"{STATUS_EMOJI.get(cell.status, '?')} {code} {human_duration(cell.duration_s)} {cell.value}"
    text = text.rstrip()
    return text if len(text) <= width else text[: width - 1] + "…"


def _rows(view: RunbookReportView, flagged: dict[int, list[int]], width: int) -> list[str]:
    head = "  " + "task".ljust(_TASK_COL) + "".join(
        f" │ {f'{n}. {name}'[:width].ljust(width)}" for n, name in enumerate(view.steps, 1))
    rows = [head.rstrip()]
    for i, (task, row) in enumerate(zip(view.tasks, view.cells, strict=True)):
        mark = "⚠ " if i in flagged else "  "
        line = mark + short_task_id(task).ljust(_TASK_COL) + "".join(
            f" │ {_cell_text(c, width).ljust(width)}" for c in row)
        rows.append(line.rstrip())
    return rows


def _table_sections(rows: list[str], budget: int) -> tuple[list[Block], int]:
    """The table as code-block sections cut at row boundaries (the header row repeats); rows beyond
    ``budget`` characters in all are left to the file. Returns the blocks and the rows left out."""
    blocks: list[Block] = []
    header, body = rows[0], rows[1:]
    used, i = 0, 0
    while i < len(body):
        chunk = [header]
        while i < len(body) and _shown(chunk + [body[i]]) <= SECTION_LIMIT - 50:
            chunk.append(body[i])
            i += 1
        if len(chunk) == 1:  # one row wider than a section: cannot happen with capped widths; stop safely
            break
        size = _shown(chunk)
        if used + size > budget:
            i -= len(chunk) - 1
            break
        blocks.append(_section(code_block("\n".join(chunk))))
        used += size
    return blocks, len(body) - i


def _shown(lines: list[str]) -> int:
    return slack_len(code_block("\n".join(lines)))


def _width(view: RunbookReportView) -> int:
    # A row must fit a section; the whole table should fit ~half the message for 10 tasks.
    steps = max(1, len(view.steps))
    per_row = (SECTION_LIMIT - 400) // 4  # at least 4 rows (and the header) per section
    return max(_CELL_MIN, min(_CELL_MAX, (per_row - _TASK_COL - 2) // steps - 3))


def render_runbook_report(view: RunbookReportView) -> SlackMessage:
    flagged = outliers(view)
    statuses = Counter(c.status for row in view.cells for c in row)
    worst = next((s for s in ("error", "timeout", "failed", "cancelled", NOT_RUN) if statuses.get(s)), "ok")
    emoji = {"ok": "📋", NOT_RUN: "🛑"}.get(worst, STATUS_EMOJI.get(worst, "📋"))
    n_tasks, n_steps = len(view.tasks), len(view.steps)
    title = (f"{emoji} Runbook *{_prose(view.runbook)}* on *{_prose(view.service)}* ({_prose(view.environment)})"
             f" · {n_tasks} task{'s' if n_tasks != 1 else ''} × {n_steps} step{'s' if n_steps != 1 else ''}")
    if flagged:
        verdict = f"⚠️ *{len(flagged)} task{'s differ' if len(flagged) > 1 else ' differs'} from the majority*"
    elif n_tasks >= 3:
        split = [view.steps[i] for i in range(n_steps) if majority_value(view, i) is None]
        verdict = ("✅ Every task agrees with the majority on every step." if not split else
                   f"No task stands out; no majority answer on {', '.join(_prose(s) for s in split[:5])}.")
    else:
        verdict = "Too few tasks to tell which one differs."
    who = f"by {_user(view.requester)}"
    if view.approved_by:
        who += " · approved by " + ", ".join(_user(u) for u in view.approved_by)
    blocks: list[Block] = [_section(f"{title}\n{verdict}"), _context(f"{who} · request {_prose(view.request_id)}")]

    legend = " · ".join(f"{n}. *{_prose(name)}* {inline_code(cmd, 150)}"
                        for n, (name, cmd) in enumerate(zip(view.steps, view.commands, strict=True), 1))
    blocks.append(_context(legend))
    flags = _flag_text(view, flagged)
    footer_room = 600  # the closing context lines
    budget = MESSAGE_BUDGET - sum(_block_len(b) for b in blocks) - slack_len(flags) - footer_room
    table, left_out = _table_sections(_rows(view, flagged, _width(view)), budget)
    blocks.extend(table[: MAX_BLOCKS - len(blocks) - 3])
    if flags:
        blocks.append(_section(flags))
    where = "📎 Every step's full output on every task (redacted) is in the file in this thread."
    if left_out:
        where = f"{left_out} more task{'s' if left_out > 1 else ''} not shown here. " + where
    closing = [where]
    if view.cancel_reason:
        closing.append(f"🛑 {view.cancel_reason}")  # ours ("cancelled by <@U…>"): mrkdwn
    blocks.append(_context(*closing))
    text = f"{emoji} Runbook {view.runbook} on {view.service}: " + (
        f"{len(flagged)} of {n_tasks} tasks differ" if flagged else f"{n_tasks} tasks × {n_steps} steps")
    return SlackMessage(_fallback(text), blocks)


def _flag_text(view: RunbookReportView, flagged: dict[int, list[int]]) -> str:
    if not flagged:
        return ""
    lines = []
    for task, steps in list(flagged.items())[:_FLAGS_SHOWN]:
        parts = []
        for step in steps[:4]:
            cell, normal = view.cells[task][step], majority_value(view, step)
            said = _brief(cell)
            usual = f" (most: {_brief(normal)})" if normal is not None else ""
            parts.append(f"*{_prose(view.steps[step])}* {said}{usual}")
        if len(steps) > 4:
            parts.append(f"and {len(steps) - 4} more steps")
        lines.append(f"⚠ task `{escape(short_task_id(view.tasks[task]))}`: " + "; ".join(parts))
    if len(flagged) > _FLAGS_SHOWN:
        lines.append(f"… and {len(flagged) - _FLAGS_SHOWN} more tasks (see the table and the file)")
    return "*Differs from the majority*\n" + "\n".join(lines)  # _section clips it, never inside an entity


def _brief(cell: CellView) -> str:
    value = cell.value if len(cell.value) <= 60 else cell.value[:59] + "…"
    code = "?" if cell.exit_code is None else str(cell.exit_code)
    status = f"exit {code}" if cell.status in ("ok", "failed") else cell.status
    shown = escape(value.replace("`", "'"))
    return f"{status} `{shown}`" if value else status


def _block_len(block: Block) -> int:
    if "text" in block:
        return slack_len(block["text"]["text"])
    return sum(slack_len(e.get("text", "")) for e in block.get("elements", ()))


# -- the file and the command line -----------------------------------------------------------------------


def report_file(view: RunbookReportView, result: _RunbookResult, redactor: Redactor) -> tuple[str, str, bytes]:
    """Every step's full (bounded) output on every task, cleaned and redacted: ``(name, title, bytes)``."""
    parts: list[str] = [report_text(view), ""]
    for n, s in enumerate(result.steps, 1):
        for task, r in zip(result.targets, s.results or (), strict=False):
            cell = cell_view(s.step, r, redactor)
            parts.append(f"=== step {n} {s.step.name} · task {task.task_id} · {_cell_text(cell, 200)} ===")
            parts.append(f"$ {redactor.redact(s.step.command)}")
            parts.append(full_output_text(r.output, redactor).rstrip("\n"))
            if r.error is not None:
                parts.append(f"({redactor.redact(r.error.user_text())})")
            parts.append("")
    name = f"runbook-{view.runbook}-{view.service}-{view.request_id}.txt"
    title = f"Runbook {view.runbook} · {view.service} · every output (redacted)"
    return name, title, "\n".join(parts).encode()


def report_text(view: RunbookReportView) -> str:
    """The report as plain text (the CLI, and the top of the file)."""
    flagged = outliers(view)
    lines = [f"runbook {view.runbook} on {view.service} ({view.environment}): "
             f"{len(view.tasks)} tasks × {len(view.steps)} steps, request {view.request_id}"]
    lines += [f"  {n}. {name}: {cmd}" for n, (name, cmd) in enumerate(zip(view.steps, view.commands, strict=True), 1)]
    lines += _rows(view, flagged, 40)
    for task, steps in flagged.items():
        names = ", ".join(view.steps[s] for s in steps)
        lines.append(f"differs from the majority: task {view.tasks[task]} ({names})")
    if view.cancel_reason:
        lines.append(f"cancelled: {view.cancel_reason}")
    return "\n".join(lines) + "\n"
