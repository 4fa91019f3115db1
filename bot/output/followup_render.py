"""What follow-up filters look like in Slack: the Filter button, its form, and the answer. Pure.

The answer quotes kept output (already redacted when it was kept) and the user's pattern (redacted and
escaped here, like a command). It fits Slack's limits with render's own rules (whole lines, one cut),
and says when the matching lines are attached as a file because the message could not hold them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.output.filters import DEFAULT_LINES, MAX_LINES, MAX_PATTERN_CHARS, MAX_SHOWN_BYTES
from bot.output.render import (
    MODAL_METADATA_LIMIT,
    SECTION_LIMIT,
    Block,
    OutputView,
    SlackMessage,
    _check_value,
    _context,
    _fallback,
    _fit_output,
    _plain,
    _prose,
    _section,
    code_block,
    gap_line,
    human_bytes,
    inline_code,
    short_task_id,
)

FILTER_ACTION = "ecs_exec_filter"
FILTER_MODAL = "ecs_exec_filter_modal"
FILTER_PATTERN, FILTER_OPTIONS, FILTER_SHOW, FILTER_LINES = "filter_pattern", "filter_options", "filter_show", "filter_lines"
OPTION_FIXED, OPTION_IGNORE_CASE, OPTION_INVERT = "fixed", "ignore_case", "invert"
SHOW_HEAD, SHOW_TAIL, SHOW_COUNT = "head", "tail", "count"
# The part of a fan-out answer each task gets, so the answer stays within the message budget.
_PARTS_SHOWN = 6


def filter_button(request_id: str) -> Block:
    """"Filter": a follow-up on this run's kept output, answered in the thread."""
    _check_value(request_id)
    return {"type": "actions", "block_id": f"filter-{request_id}"[:255], "elements": [{
        "type": "button", "action_id": FILTER_ACTION, "text": _plain("🔎 Filter", 75), "value": request_id,
    }]}


def render_filter_modal(command: str, private_metadata: str) -> dict[str, Any]:
    """The form: a pattern, three switches, first/last/count, and how many lines. ``private_metadata``
    names the run (re-checked on submission: it is input)."""
    if len(private_metadata) > MODAL_METADATA_LIMIT:
        raise ValueError(f"private_metadata must be at most {MODAL_METADATA_LIMIT} characters")

    def option(value: str, label: str) -> dict[str, Any]:
        return {"text": _plain(label, 75), "value": value}

    show = [option(SHOW_HEAD, "First matching lines"), option(SHOW_TAIL, "Last matching lines"),
            option(SHOW_COUNT, "Count only")]
    return {
        "type": "modal",
        "callback_id": FILTER_MODAL,
        "title": _plain("Filter the output", 24),
        "submit": _plain("Filter", 24),
        "close": _plain("Cancel", 24),
        "private_metadata": private_metadata,
        "blocks": [
            _context(f"Output of {inline_code(command, 300)}, as kept (redacted). Nothing runs again."),
            {"type": "input", "block_id": FILTER_PATTERN, "label": _plain("Pattern", 75), "element": {
                "type": "plain_text_input", "action_id": FILTER_PATTERN, "max_length": MAX_PATTERN_CHARS,
                "placeholder": _plain('" 502 " or timeout|refused', 150)},
             "hint": _plain("An RE2 regular expression, or a fixed string with the first switch below.", 150)},
            {"type": "input", "block_id": FILTER_OPTIONS, "optional": True, "label": _plain("Switches", 75),
             "element": {"type": "checkboxes", "action_id": FILTER_OPTIONS, "options": [
                 option(OPTION_FIXED, "Fixed string"), option(OPTION_IGNORE_CASE, "Ignore case"),
                 option(OPTION_INVERT, "Lines that do NOT match")]}},
            {"type": "input", "block_id": FILTER_SHOW, "label": _plain("Show", 75), "element": {
                "type": "radio_buttons", "action_id": FILTER_SHOW, "options": show, "initial_option": show[0]}},
            {"type": "input", "block_id": FILTER_LINES, "optional": True, "label": _plain("How many lines", 75),
             "element": {"type": "number_input", "action_id": FILTER_LINES, "is_decimal_allowed": False,
                         "min_value": "1", "max_value": str(MAX_LINES),
                         "placeholder": _plain(f"{DEFAULT_LINES}", 150)}},
        ],
    }


@dataclass(frozen=True)
class FilterPartView:
    task_id: str
    container: str
    matched: int
    total_lines: int
    shown: str  # matching lines, from redacted output
    not_shown: int
    byte_bound: bool


@dataclass(frozen=True)
class FilterAnswerView:
    """A filter's answer as render sees it: every text already redacted (the pattern too)."""

    request_id: str
    service: str
    environment: str
    command: str
    filter_text: str  # `OutputFilter.describe()`, redacted
    count_only: bool
    user: str
    parts: Sequence[FilterPartView]


def _line_words(n: int) -> str:
    return f"{n:,} line{'s' if n != 1 else ''}"


def render_filter_answer(view: FilterAnswerView) -> tuple[SlackMessage, bool]:
    """The answer in the run's thread, and whether the matching lines needed a file to be seen whole."""
    matched = sum(p.matched for p in view.parts)
    total = sum(p.total_lines for p in view.parts)
    blocks: list[Block] = [
        _section(f"🔎 *{_prose(view.service)}* ({_prose(view.environment)}) · {matched:,} of "
                 f"{_line_words(total)} match {inline_code(view.filter_text, 300)}"),
        _context(f"in the kept output of {inline_code(view.command, 300)} · by <@{view.user}> · "
                 f"req {_prose(view.request_id)} · nothing was run again"),
    ]
    needs_file = False
    several = len(view.parts) > 1
    # Per side (head, tail) of each task's lines: one task may fill its sections; several share ~8,000.
    budget = SECTION_LIMIT if not several else max(500, 4000 // min(len(view.parts), _PARTS_SHOWN))
    for part in list(view.parts)[:_PARTS_SHOWN]:
        label = (f"task {_prose(short_task_id(part.task_id))} · {_prose(part.container)} · "
                 f"{part.matched:,} of {_line_words(part.total_lines)}")
        if view.count_only or not part.matched:
            if several:
                blocks.append(_context(label))
            continue
        # The label shares the head's section, so the head's budget leaves room for it.
        fitted = _fit_output(OutputView(head=part.shown), budget - (200 if several else 0), budget)
        blocks.append(_section(f"{label}\n{code_block(fitted.head)}" if several else code_block(fitted.head)))
        notes = []
        if fitted.cut:
            needs_file = True
            blocks.append(_context(gap_line(fitted.hidden_lines, fitted.hidden_bytes)))
        if fitted.tail:
            blocks.append(_section(code_block(fitted.tail)))
        if part.not_shown:
            why = (f"past the {human_bytes(MAX_SHOWN_BYTES)} a filter shows" if part.byte_bound
                   else "beyond the lines asked for")
            more = part.not_shown
            notes.append(f"{more:,} more matching line{'s' if more != 1 else ''}, {why}")
        if notes:
            blocks.append(_context(" · ".join(notes)))
    if len(view.parts) > _PARTS_SHOWN:
        blocks.append(_context(f"… and {len(view.parts) - _PARTS_SHOWN} more tasks: every match is in the file"))
        needs_file = not view.count_only
    if needs_file:
        blocks.append(_context("📎 the matching lines (redacted) are attached below"))
    text = f"🔎 {view.service}: {matched:,} of {total:,} lines match {view.filter_text}"
    return SlackMessage(_fallback(text), blocks), needs_file


def filter_file_text(view: FilterAnswerView) -> str:
    """The matching lines in full (within the filter's bounds), one section per task for a fan-out."""
    if len(view.parts) == 1:
        return view.parts[0].shown
    return "".join(f"=== task {p.task_id} · {p.container} · {p.matched:,} matching lines ===\n{p.shown}"
                   for p in view.parts)

