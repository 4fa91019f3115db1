"""Every message the Slack handlers send, as ``(text, blocks)``: the seam to `bot.output.render`.

Handlers never build Block Kit themselves. This module turns runner results into render views and
redacts everything that could carry a secret (output, error sentences, the command itself) before it is
rendered, so nothing unredacted reaches Slack whichever message it ends up in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.commands import HELP_TEXT
from bot.errors import BotError
from bot.output.clean import clean_terminal_output
from bot.output.redact import builtin_redactor
from bot.output.render import (
    ApprovalView,
    LiveTaskView,
    LiveView,
    OutputView,
    RunView,
    TaskResultView,
    escape,
    fanout_cuts,
    gap_line,
    render_approval,
    render_doctor,
    render_error,
    render_help,
    render_internal_error,
    render_list,
    render_notice,
    render_result,
    render_run_modal,
    render_running,
    result_cut,
)

if TYPE_CHECKING:
    from bot.doctor import DoctorReport
    from bot.output.redact import Redactor
    from bot.runner import ExecResult
    from bot.runs.fanout import TargetProgress
    from bot.runs.order import RunOrder
    from bot.store.base import RunRecord
    from bot.targets import Target

Message = tuple[str, list[dict[str, Any]]]  # render's SlackMessage is one

# Head and tail are redacted as one text so a secret that a cut would split is still seen whole by the
# redactor. Cleaned output has no control characters, so this line cannot occur in it.
_JOIN = "\n\x00ecs-exec-bot-gap\x00\n"


def _redact(redactor: Redactor | None, text: str) -> str:
    # Without a configured redactor the built-in kinds still apply: nothing leaves unredacted by default.
    return (redactor or builtin_redactor()).redact(text)


# The longest secret a cut could split that we still want gone whole (JWTs and PATs are far shorter).
_CUT_WORD_MAX = 2048


def _drop_cut_words(head: str, tail: str, tail_starts_line: bool) -> tuple[str, str]:
    """Where the capture cut inside a line (no newline near), the words on both sides of the cut are
    fragments: a token cut in two is no longer recognisable to the redactor (``ghp_A1b2…`` ends the head),
    yet half of it is still a leak. Drop those fragments (at most ``_CUT_WORD_MAX`` characters each)."""
    if head and not head[-1].isspace():
        window = head[-_CUT_WORD_MAX:]
        space = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
        head = head[: len(head) - len(window) + space + 1] + "…"
    if tail and not tail_starts_line and not tail[0].isspace():
        window = tail[:_CUT_WORD_MAX]
        spaces = [i for i in (window.find(" "), window.find("\n"), window.find("\t")) if i >= 0]
        tail = "…" + tail[min(spaces) if spaces else len(window) :]
    return head, tail


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


def running(service: str, command: str, redactor: Redactor | None = None) -> Message:
    return render_notice(f"⏳ Running `{_redact(redactor, command)}` on {service}…")


def approval_pending(service: str, command: str, redactor: Redactor | None = None) -> Message:
    text = f"✋ `{_redact(redactor, command)}` on {service} needs approval; the request is posted in this channel."
    return render_notice(text)


def run_modal(services: list[tuple[str, str]], private_metadata: str) -> dict[str, Any]:
    """The "Run on ECS…" modal (a view, not a message; Block Kit all the same)."""
    return render_run_modal(services, private_metadata)


# -- channel messages --------------------------------------------------------------------------------------


def run_view(order: RunOrder, redactor: Redactor | None) -> RunView:
    return RunView(
        service=order.service.name,
        environment=order.service.environment,
        command=_redact(redactor, order.command),
        requester=order.requester,
        approved_by=order.approved_by,
        reason=_redact(redactor, order.reason) if order.reason else None,
    )


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


def task_view(result: ExecResult, redactor: Redactor | None) -> TaskResultView:
    head, tail = result.head_text, result.tail_text
    if tail:
        head, tail = _drop_cut_words(head, tail, result.output.tail_starts_line)
        joined = _redact(redactor, head + _JOIN + tail)
        head, sep, tail = joined.partition(_JOIN.strip("\n"))
        if not sep:  # a multi-line secret swallowed the marker: show it all as head (render cuts it)
            head, tail = joined, ""
        head, tail = head.rstrip("\n") + "\n", tail.lstrip("\n")
    else:
        head = _redact(redactor, head)
    error = result.error.user_text() if result.error else None
    return TaskResultView(
        task_id=result.target.task_id,
        container=result.target.container,
        status=result.status,
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        output=OutputView(
            head=head,
            tail=tail,
            dropped_lines=result.output.dropped_lines,
            dropped_bytes=result.output.dropped_bytes,
        ),
        error=_redact(redactor, error) if error else None,
        note=_redact(redactor, note) if (note := result_note(result)) else None,
    )


def result_note(result: ExecResult) -> str | None:
    """What the reader must know beyond the status: a channel that dropped after the command exited, or
    output the agent never delivered (so nobody mistakes a partial output for the whole)."""
    notes = [result.note] if result.note else []
    if result.missing_messages:
        notes.append(f"Output incomplete: {result.missing_messages:,} messages were lost in transit.")
    return " ".join(notes) or None


def result_message(
    order: RunOrder, results: list[ExecResult], *, cancel_reason: str | None, redactor: Redactor | None
) -> Message:
    views = [task_view(r, redactor) for r in results]
    text, blocks = render_result(run_view(order, redactor), views)
    if cancel_reason and any(r.status == "cancelled" for r in results):
        # The reason is ours ("cancelled by <@U…>", "the bot is restarting"): mrkdwn, not escaped.
        reason = {"type": "context", "elements": [{"type": "mrkdwn", "text": f"🛑 {cancel_reason}"}]}
        blocks = [*blocks, reason]
    return text, blocks


def error_message(order: RunOrder, sentence: str, redactor: Redactor | None = None) -> Message:
    """The channel message when the run failed as a whole (it already said "running…")."""
    text = f"⚠️ {order.service.name} ({order.service.environment}): {_redact(redactor, sentence)}"
    command = _redact(redactor, order.command)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{escape(text)}\n`{escape(command[:1500])}`"},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"by <@{order.requester}>"}]},
    ]
    return text[:300], blocks


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
    """Per result: did the message leave part of its output out (so the full output goes in the thread)?"""
    views = [task_view(r, redactor) for r in results]
    if len(views) == 1:
        return [result_cut(views[0])]
    return fanout_cuts(views)


def output_file(order: RunOrder, result: ExecResult, redactor: Redactor | None) -> tuple[str, str, bytes]:
    """The full (bounded) output, cleaned and redacted as one text: ``(filename, title, content)``."""
    out = result.output
    text = clean_terminal_output(out.file_head)
    if out.file_tail:
        gap = gap_line(out.file_dropped_lines, out.file_dropped_bytes, "not kept")
        head, tail = _drop_cut_words(text, clean_terminal_output(out.file_tail), out.file_tail_starts_line)
        text = f"{head.rstrip(chr(10))}\n{gap}\n{tail}"
    task = result.target.task_id[:12]
    name = f"{order.service.name}-{task}-{order.request_id}.txt"
    title = f"Full output (redacted) · {order.service.name} · task {task}"
    return name, title, _redact(redactor, text).encode()
