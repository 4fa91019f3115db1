"""Every message the Slack handlers send, as ``(text, blocks)``: the seam to `bot.output.render`.

Handlers never build Block Kit themselves. Runner results become views through `bot.output.views`, the one
place that cleans, cuts and redacts output; the short notices here redact the command they quote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.commands import HELP_TEXT
from bot.config import MAX_TIMEOUT_S
from bot.errors import BotError
from bot.output import views
from bot.output.followup_render import (
    FilterAnswerView,
    FilterPartView,
    filter_button,
    filter_file_text,
    render_filter_answer,
    render_filter_modal,
)
from bot.output.render import (
    ApprovalView,
    BuilderView,
    HomeView,
    LiveTaskView,
    LiveView,
    RecentRunView,
    RunView,
    message_link,
    render_approval,
    render_builder,
    render_doctor,
    render_error,
    render_help,
    render_home,
    render_internal_error,
    render_list,
    render_notice,
    render_result,
    render_run_error,
    render_run_modal,
    render_running,
)

if TYPE_CHECKING:
    from bot.doctor import DoctorReport
    from bot.output.redact import Redactor
    from bot.runner import ExecResult
    from bot.runs import RunRecord
    from bot.runs.fanout import TargetProgress
    from bot.runs.followups import FilterAnswer
    from bot.runs.ledger import RecentRun
    from bot.runs.order import RunOrder
    from bot.targets import Target

Message = tuple[str, list[dict[str, Any]]]  # render's SlackMessage is one

def _redact(redactor: Redactor | None, text: str) -> str:
    return views.redacted(text, redactor)


# -- acks and ephemeral answers ----------------------------------------------------------------------------


def already_received() -> Message:
    return render_notice("Already received: this exact request was handled once, so nothing runs twice.")


def checking() -> Message:
    return render_notice("⏳ Checking your permissions…")


def internal_error(request_id: str) -> Message:
    return render_internal_error(request_id)


def refusal(exc: BotError) -> Message:
    return render_error(exc)


def help_message() -> Message:
    return render_help(HELP_TEXT)


def allowed_list(lines: list[str]) -> Message:
    return render_list(lines)


def doctor_started(service: str) -> Message:
    return render_notice(f"🩺 Checking ECS Exec for {service}…")


def doctor_report(report: DoctorReport) -> Message:
    return render_doctor(report)


def running(service: str, command: str, redactor: Redactor | None = None, *, ahead: int | None = None) -> Message:
    """The ack of an allowed command: running now, or queued behind ``ahead`` others (the bot is busy)."""
    if ahead is not None:
        place = "next in line" if ahead == 0 else f"{ahead} ahead of you"
        return render_notice(f"⏳ Queued `{_redact(redactor, command)}` on {service}: {place}.")
    return render_notice(f"⏳ Running `{_redact(redactor, command)}` on {service}…")


def approval_pending(service: str, command: str, redactor: Redactor | None = None) -> Message:
    text = f"✋ `{_redact(redactor, command)}` on {service} needs approval; the request is posted in this channel."
    return render_notice(text)


def run_modal(services: list[tuple[str, str]], private_metadata: str) -> dict[str, Any]:
    """The "Run on ECS…" modal (a view, not a message; Block Kit all the same)."""
    return render_run_modal(services, private_metadata)


# -- channel messages --------------------------------------------------------------------------------------


def run_view(order: RunOrder, redactor: Redactor | None) -> RunView:
    return views.run_view(service=order.service.name, environment=order.service.environment,
                          command=order.command, requester=order.requester, redactor=redactor,
                          approved_by=order.approved_by, reason=order.reason, request_id=order.request_id,
                          cluster=order.service.cluster, ecs_service=order.service.service,
                          timeout_s=order.timeout, max_timeout_s=MAX_TIMEOUT_S)


def running_message(order: RunOrder, targets: list[Target], redactor: Redactor | None) -> Message:
    """The "running…" message; its Cancel button carries the request id (any replica can act on it)."""
    return render_running(run_view(order, redactor), [t.task_id for t in targets], run_id=order.request_id)


def live_message(
    order: RunOrder,
    targets: list[Target],
    progress: list[TargetProgress],
    elapsed_s: float,
    redactor: Redactor | None,
    *,
    tail_lines: int = 5,
) -> Message:
    """The "running…" message with the progress so far: the same Cancel button, plus elapsed time, lines,
    bytes and the last lines of output (cleaned by the runner, redacted here like every output)."""
    tasks = tuple(
        LiveTaskView(
            task_id=p.target.task_id, bytes=p.bytes, lines=p.lines,
            tail=_redact(redactor, "\n".join(p.tail_text.split("\n")[-tail_lines:])) if p.tail_text else "",
        )
        for p in progress
    )
    live = LiveView(elapsed_s=elapsed_s, tasks=tasks)
    return render_running(run_view(order, redactor), [t.task_id for t in targets], run_id=order.request_id, live=live)


def result_message(
    order: RunOrder, results: list[ExecResult], *, cancel_reason: str | None, redactor: Redactor | None,
    filterable: bool = False,
) -> Message:
    """``filterable``: the output was kept for follow-ups, so the message offers the Filter button."""
    task_views = [views.task_result_view(r, redactor) for r in results]
    extra = [filter_button(order.request_id)] if filterable else []
    return render_result(run_view(order, redactor), task_views, cancel_reason=cancel_reason, extra=extra)


# -- follow-ups ---------------------------------------------------------------------------------------------


def filter_modal(command: str, private_metadata: str, redactor: Redactor | None) -> dict[str, Any]:
    return render_filter_modal(_redact(redactor, command), private_metadata)


def filtering() -> Message:
    return render_notice("🔎 Filtering the thread's last kept output…")


def filter_answer(answer: FilterAnswer, user: str, redactor: Redactor | None) -> tuple[Message, str | None]:
    """The answer in the run's thread, and the text of the file to attach when the message had to cut
    (the kept output was redacted when kept; the pattern the user typed is redacted here)."""
    view = FilterAnswerView(
        request_id=answer.run.request_id, service=answer.run.service, environment=answer.run.environment,
        command=_redact(redactor, answer.run.command), filter_text=_redact(redactor, answer.spec.describe()),
        count_only=answer.spec.count_only, user=user,
        parts=[FilterPartView(task_id=p.part.task_id, container=p.part.container, matched=p.result.matched,
                              total_lines=p.result.total_lines, shown=p.result.shown, not_shown=p.result.not_shown,
                              byte_bound=p.result.byte_bound) for p in answer.parts],
    )
    message, needs_file = render_filter_answer(view)
    return message, filter_file_text(view) if needs_file else None


def error_message(order: RunOrder, sentence: str, redactor: Redactor | None = None) -> Message:
    """The channel message when the run failed as a whole (it already said "running…")."""
    return render_run_error(run_view(order, redactor), _redact(redactor, sentence))


RESTARTED = "The bot restarted while this command was in progress; it may have completed — check the task."


def recovered_run_message(record: RunRecord, redactor: Redactor | None = None) -> Message:
    """The channel message of a run the watchdog failed (its replica stopped mid-run)."""
    from bot.runs.order import order_from_record

    return error_message(order_from_record(record), RESTARTED, redactor)


def approval_view(record: RunRecord, redactor: Redactor | None = None) -> ApprovalView:
    """The record as render's view of an approval request, with its free texts redacted."""
    import json

    from bot.runs.approvals import named_approvers

    target = json.loads(str(record.params.get("target") or "{}"))
    decided = {"denied": (record.decided_by,), "cancelled": (record.decided_by,)}.get(
        record.state.value, record.approvers_so_far
    )
    return ApprovalView(
        request_id=record.request_id,
        requester=record.requester,
        service=record.service,
        environment=record.environment,
        command=_redact(redactor, record.command),
        expires_at=int(record.expires_at),
        approver_users=named_approvers(record),
        approver_groups=record.approver_groups,
        min_approvals=record.min_approvals,
        reason=_redact(redactor, record.reason) if record.reason else None,
        task=target.get("task"),
        all_tasks=bool(target.get("all_tasks")),
        state=record.state.value,
        decided_by=tuple(u for u in decided if u),
        votes=len(record.votes),
        button_value=f"{record.request_id}|{record.request_hash}",
        cancel=True,
        break_glass=any(v.break_glass for v in record.votes),
        state_reason=_redact(redactor, record.state_reason) if record.state_reason else None,
    )


def approval_message(record: RunRecord, redactor: Redactor | None = None) -> Message:
    return render_approval(approval_view(record, redactor))


def files_needed(results: list[ExecResult], redactor: Redactor | None) -> list[bool]:
    return views.files_needed(results, redactor)


def output_file(order: RunOrder, result: ExecResult, redactor: Redactor | None) -> tuple[str, str, bytes]:
    return views.output_file(result, redactor, service=order.service.name, request_id=order.request_id)


# -- views (App Home, the command builder) -----------------------------------------------------------------


def builder_modal(view: BuilderView) -> dict[str, Any]:
    return render_builder(view)


def home_view(
    approvals: list[RunRecord], more: int, recent: list[RecentRun], allowed: list[str],
    redactor: Redactor | None = None, notice: str | None = None,
) -> dict[str, Any]:
    """App Home: the pending cards as approvers see them in the channel (without the requester's Cancel),
    with a link to each; the recent requests, their commands redacted."""
    from dataclasses import replace

    return render_home(HomeView(
        approvals=tuple((replace(approval_view(r, redactor), cancel=False), message_link(r.channel, r.message_ts))
                        for r in approvals),
        more_approvals=more,
        recent=tuple(RecentRunView(state=r.state, service=r.service, environment=r.environment,
                                   command=_redact(redactor, r.command), at=int(r.at),
                                   link=message_link(r.channel, r.message_ts)) for r in recent),
        allowed=tuple(allowed),
        notice=_redact(redactor, notice) if notice else None,
    ))
