"""Every message the Slack handlers send, as ``(text, blocks)``: the seam to `bot.output.render`.

Handlers never build Block Kit themselves. Runner results become views through `bot.output.views`, the one
place that cleans, cuts and redacts output; the short notices here redact the command they quote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.commands import HELP_TEXT
from bot.errors import BotError
from bot.output import views
from bot.output.render import (
    RunView,
    escape,
    render_doctor,
    render_error,
    render_help,
    render_internal_error,
    render_list,
    render_notice,
    render_result,
    render_running,
)

if TYPE_CHECKING:
    from bot.doctor import DoctorReport
    from bot.output.redact import Redactor
    from bot.runner import ExecResult
    from bot.targets import Target
    from handlers.execution import ExecOrder

Message = tuple[str, list[dict[str, Any]]]


def _redact(redactor: Redactor | None, text: str) -> str:
    return views.redacted(text, redactor)


# -- acks and ephemeral answers ----------------------------------------------------------------------------


def already_received() -> Message:
    return tuple(
        render_notice("Already received: this exact request was handled once, so nothing runs twice.")
    )  # type: ignore[return-value]


def checking() -> Message:
    return tuple(render_notice("⏳ Checking your permissions…"))  # type: ignore[return-value]


def internal_error(request_id: str) -> Message:
    return tuple(render_internal_error(request_id))  # type: ignore[return-value]


def refusal(exc: BotError) -> Message:
    return tuple(render_error(exc))  # type: ignore[return-value]


def help_message() -> Message:
    return tuple(render_help(HELP_TEXT))  # type: ignore[return-value]


def allowed_list(lines: list[str]) -> Message:
    return tuple(render_list(lines))  # type: ignore[return-value]


def doctor_started(service: str) -> Message:
    return tuple(render_notice(f"🩺 Checking ECS Exec for {service}…"))  # type: ignore[return-value]


def doctor_report(report: DoctorReport) -> Message:
    return tuple(render_doctor(report))  # type: ignore[return-value]


def running(service: str, command: str, redactor: Redactor | None = None) -> Message:
    return tuple(render_notice(f"⏳ Running `{_redact(redactor, command)}` on {service}…"))  # type: ignore[return-value]


def approval_pending(service: str, command: str, redactor: Redactor | None = None) -> Message:
    text = f"✋ `{_redact(redactor, command)}` on {service} needs approval; the request is posted in this channel."
    return tuple(render_notice(text))  # type: ignore[return-value]


# -- channel messages --------------------------------------------------------------------------------------


def run_view(order: ExecOrder, redactor: Redactor | None) -> RunView:
    return views.run_view(service=order.service.name, environment=order.service.environment,
                          command=order.command, requester=order.requester, redactor=redactor,
                          approved_by=order.approved_by, reason=order.reason)


def running_message(order: ExecOrder, targets: list[Target], redactor: Redactor | None) -> Message:
    """The "running…" message; its Cancel button carries the request id (the job id on this replica)."""
    return tuple(
        render_running(
            run_view(order, redactor),
            [t.task_id for t in targets],
            run_id=order.cancel_value or order.request_id,
        )
    )  # type: ignore[return-value]


def result_message(
    order: ExecOrder, results: list[ExecResult], *, cancel_reason: str | None, redactor: Redactor | None
) -> Message:
    task_views = [views.task_result_view(r, redactor) for r in results]
    text, blocks = render_result(run_view(order, redactor), task_views)
    if cancel_reason and any(r.status == "cancelled" for r in results):
        # The reason is ours ("cancelled by <@U…>", "the bot is restarting"): mrkdwn, not escaped.
        reason = {"type": "context", "elements": [{"type": "mrkdwn", "text": f"🛑 {cancel_reason}"}]}
        blocks = [*blocks, reason]
    return text, blocks


def error_message(order: ExecOrder, sentence: str, redactor: Redactor | None = None) -> Message:
    """The channel message when the run failed as a whole (it already said "running…")."""
    text = f"⚠️ {order.service.name} ({order.service.environment}): {_redact(redactor, sentence)}"
    command = _redact(redactor, order.command)
    blocks = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{escape(text)}\n`{escape(command[:1500])}`"},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"by <@{order.requester}>"}]},
    ]
    return text[:300], blocks


def files_needed(results: list[ExecResult], redactor: Redactor | None) -> list[bool]:
    return views.files_needed(results, redactor)


def output_file(order: ExecOrder, result: ExecResult, redactor: Redactor | None) -> tuple[str, str, bytes]:
    return views.output_file(result, redactor, service=order.service.name, request_id=order.request_id)
