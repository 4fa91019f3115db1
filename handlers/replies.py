"""Every message the Slack handlers send, as ``(text, blocks)``: the seam to `bot.output.render`.

Handlers never build Block Kit themselves; this module picks the renderer for each situation and
applies redaction to anything that carries command output or error text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.commands import HELP_TEXT
from bot.errors import BotError
from bot.output.clean import clean_terminal_output

if TYPE_CHECKING:
    from bot.output.redact import Redactor
    from bot.runner import ExecResult
    from bot.targets import Target
    from handlers.execution import ExecOrder

Message = tuple[str, list[dict[str, Any]] | None]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def already_received() -> Message:
    return ("Already received: this exact request was handled once, so nothing runs twice.", None)


def checking() -> Message:
    return (":hourglass_flowing_sand: Checking your permissions…", None)


def internal_error(request_id: str) -> Message:
    return (f":warning: internal error, reference {request_id}", None)


def refusal(exc: BotError) -> Message:
    return (f":no_entry: {exc.user_text()}", None)


def help_message() -> Message:
    return (HELP_TEXT, None)


def allowed_list(lines: list[str]) -> Message:
    if not lines:
        return ("No policy rule includes you, so you cannot run commands here (deny by default).", None)
    return ("You may run:\n" + "\n".join(f"• {line}" for line in lines), None)


def doctor_started(service: str) -> Message:
    return (f":stethoscope: Checking ECS Exec for `{service}`…", None)


def doctor_report(report: Any) -> Message:
    return (str(report), None)


def running(service: str, command: str) -> Message:
    return (f":hourglass_flowing_sand: Running `{_escape(command)}` on *{service}*…", None)


def approval_pending(service: str, command: str) -> Message:
    return (
        f":raised_hand: `{_escape(command)}` on *{service}* needs approval; I'm asking the approvers.",
        None,
    )


def running_message(order: ExecOrder, targets: list[Target]) -> tuple[str, list[dict[str, Any]]]:
    tasks = ", ".join(t.short_task for t in targets)
    text = f":hourglass_flowing_sand: <@{order.requester}> is running `{_escape(order.command)}` on {order.service.name} (task {tasks})"
    return text, [_section(text)]


def _redact(redactor: Redactor | None, text: str) -> str:
    return redactor.redact(text) if redactor is not None else text


def result_message(
    order: ExecOrder, results: list[ExecResult], *, cancel_reason: str | None, redactor: Redactor | None
) -> tuple[str, list[dict[str, Any]]]:
    blocks = []
    for r in results:
        out = _escape(_redact(redactor, r.text))[:MESSAGE_OUTPUT_BUDGET]
        blocks.append(_section(f"{r.status} exit {r.exit_code} task {r.target.short_task}\n```{out}```"))
    return f"{order.service.name}: {order.command}", blocks


def error_message(order: ExecOrder, sentence: str) -> tuple[str, list[dict[str, Any]]]:
    text = f":warning: `{_escape(order.command)}` on {order.service.name}: {_escape(sentence)}"
    return text, [_section(text)]


MESSAGE_OUTPUT_BUDGET = 2800


def output_file(
    order: ExecOrder, result: ExecResult, redactor: Redactor | None
) -> tuple[str, str, bytes] | None:
    """The full (bounded) output, cleaned and redacted, when the message could not show all of it."""
    if not result.output.truncated and len(result.text) <= MESSAGE_OUTPUT_BUDGET:
        return None
    out = result.output
    text = clean_terminal_output(out.file_head)
    if out.file_tail:
        gap = f"··· {out.file_dropped_lines:,} lines ({out.file_dropped_bytes:,} bytes) not kept ···"
        text = f"{text.rstrip(chr(10))}\n{gap}\n{clean_terminal_output(out.file_tail)}"
    text = _redact(redactor, text)
    return (f"{order.service.name}-{result.target.short_task}.txt", "Full output (redacted)", text.encode())
