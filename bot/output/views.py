"""The output seam: a runner result → the views Slack, the CLI and files show. Pure, Slack-free.

    CapturedOutput ──clean──▶ text ──cut (whole lines)──▶ lines ──redact──▶ OutputView ──render──▶ blocks
           └─ file view ──clean──▶ cut ──redact──▶ full output file          └─ terminal_text (CLI)

Every view is built here, in one order: ``clean.clean_terminal_output`` cleans, ``cut`` decides what a
cut shows (whole lines only), ``Redactor.redact`` redacts. Cutting before redacting means the redactor
only ever sees whole lines, so a key and its value are looked at together; a partial line at a cut is
never shown (see ``bot.output.cut``). Head and tail are redacted separately: a line never spans the
gap, and a private key cut by it is caught on both sides (an open BEGIN, an orphan END).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.errors import BotError
from bot.output.capture import CapturedOutput
from bot.output.clean import clean_terminal_output
from bot.output.cut import close_line_start, keep_head, keep_tail
from bot.output.redact import Redactor, builtin_redactor
from bot.output.render import OutputView, RunView, Status, TaskResultView, fanout_cuts, gap_line, result_cut

__all__ = [
    "ExecResultLike", "files_needed", "full_output_text", "output_file", "output_view", "redacted",
    "result_note", "run_view", "task_result_view", "terminal_text",
]


class TargetLike(Protocol):
    @property
    def task_id(self) -> str: ...
    @property
    def container(self) -> str: ...


class ExecResultLike(Protocol):
    """``bot.runner.ExecResult`` as the seam reads it (``bot.output`` does not import the runner)."""

    @property
    def target(self) -> TargetLike: ...
    @property
    def status(self) -> Status: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def output(self) -> CapturedOutput: ...
    @property
    def error(self) -> BotError | None: ...
    @property
    def note(self) -> str | None: ...
    @property
    def missing_messages(self) -> int: ...


def _or_builtin(redactor: Redactor | None) -> Redactor:
    # Without a configured redactor the built-in kinds still apply: nothing leaves unredacted by default.
    return redactor if redactor is not None else builtin_redactor()


def redacted(text: str, redactor: Redactor | None) -> str:
    """A text we quote (a command, an error sentence) as it may be shown."""
    return _or_builtin(redactor).redact(text)


# -- the one pipeline: clean → cut → redact ----------------------------------------------------------------


@dataclass(frozen=True)
class _Kept:
    """Head and tail of a capture view that was cut, ready to show, and what the cut hid besides."""

    head: str
    tail: str
    hidden_lines: int
    hidden_bytes: int


def _keep(head: bytes, tail: bytes, *, tail_starts_line: bool, redact: Callable[[str], str]) -> _Kept:
    """The capture cut between ``head`` and ``tail``: the partial line on each side is hidden, except
    that a head with no whole line shows the start of its one line (``cut.keep_head``)."""
    head_cut = keep_head(clean_terminal_output(head), end_cut=not head.endswith(b"\n"))
    shown_head = redact(head_cut.shown)
    closed = ""
    if head_cut.line_start:
        shown_head, closed = close_line_start(shown_head)
    tail_cut = keep_tail(clean_terminal_output(tail), start_cut=not tail_starts_line)
    # The head's hidden piece has no newline (it is the start of a line that ends in the gap or the
    # tail), so only the tail's hidden piece adds lines to the capture's count.
    return _Kept(
        head=shown_head,
        tail=redact(tail_cut.shown),
        hidden_lines=tail_cut.hidden_lines,
        hidden_bytes=head_cut.hidden_bytes + len(closed.encode()) + tail_cut.hidden_bytes,
    )


def output_view(captured: CapturedOutput, redactor: Redactor | None) -> OutputView:
    """The message view of a capture: cleaned, cut to whole lines, redacted; ``render`` fits it."""
    redact = _or_builtin(redactor).redact
    if not captured.truncated:
        return OutputView(head=redact(clean_terminal_output(captured.head)))
    kept = _keep(captured.head, captured.tail, tail_starts_line=captured.tail_starts_line, redact=redact)
    return OutputView(head=kept.head, tail=kept.tail, dropped_lines=captured.dropped_lines + kept.hidden_lines,
                      dropped_bytes=captured.dropped_bytes + kept.hidden_bytes)


def full_output_text(captured: CapturedOutput, redactor: Redactor | None) -> str:
    """The "full (bounded) output" file: the file view, cleaned, cut and redacted like the message, with
    one line where the middle was left out (how much, and the SHA-256 of everything the command printed)."""
    redact = _or_builtin(redactor).redact
    if not captured.file_truncated:
        return redact(clean_terminal_output(captured.file_head))
    kept = _keep(captured.file_head, captured.file_tail, tail_starts_line=captured.file_tail_starts_line,
                 redact=redact)
    gap = gap_line(captured.file_dropped_lines + kept.hidden_lines, captured.file_dropped_bytes + kept.hidden_bytes,
                   "left out of this file")
    head = kept.head if not kept.head or kept.head.endswith("\n") else kept.head + "\n"
    return f"{head}{gap}\n(total {captured.total_bytes:,} bytes, sha256 {captured.sha256})\n{kept.tail}"


def terminal_text(captured: CapturedOutput, missing_messages: int = 0) -> str:
    """The CLI's view: the operator's own terminal, so not redacted, but cut and marked like the message."""
    if not captured.truncated:
        text = clean_terminal_output(captured.head)
    else:
        kept = _keep(captured.head, captured.tail, tail_starts_line=captured.tail_starts_line, redact=str)
        gap = gap_line(captured.dropped_lines + kept.hidden_lines, captured.dropped_bytes + kept.hidden_bytes)
        head = kept.head if not kept.head or kept.head.endswith("\n") else kept.head + "\n"
        text = f"{head}{gap}\n{kept.tail}"
    if missing_messages:
        # Said in the output itself so no reader mistakes it for the whole output.
        sep = "" if text.endswith("\n") or not text else "\n"
        text += f"{sep}··· output incomplete: {missing_messages:,} messages were lost in transit ···\n"
    return text


# -- runner results ------------------------------------------------------------------------------------------


def result_note(result: ExecResultLike) -> str | None:
    """What the reader must know beyond the status: a channel that dropped after the command exited, or
    output the agent never delivered (so nobody mistakes a partial output for the whole)."""
    notes = [result.note] if result.note else []
    if result.missing_messages:
        notes.append(f"Output incomplete: {result.missing_messages:,} messages were lost in transit.")
    return " ".join(notes) or None


def task_result_view(result: ExecResultLike, redactor: Redactor | None) -> TaskResultView:
    """A runner result as ``render`` needs it: output, error sentence and note cleaned and redacted."""
    redactor = _or_builtin(redactor)
    error = result.error.user_text() if result.error is not None else None
    note = result_note(result)
    return TaskResultView(
        task_id=result.target.task_id,
        container=result.target.container,
        status=result.status,
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        output=output_view(result.output, redactor),
        error=redactor.redact(error) if error else None,
        note=redactor.redact(note) if note else None,
    )


def files_needed(results: Sequence[ExecResultLike], redactor: Redactor | None) -> list[bool]:
    """Per result: does the result message leave part of its output out (so the full output is attached)?"""
    views = [task_result_view(r, redactor) for r in results]
    if len(views) == 1:
        return [result_cut(views[0])]
    return fanout_cuts(views)


def output_file(result: ExecResultLike, redactor: Redactor | None, *, service: str,
                request_id: str) -> tuple[str, str, bytes]:
    """The full output as a file to attach: ``(filename, title, content)``."""
    task = result.target.task_id[:12]
    return (f"{service}-{task}-{request_id}.txt", f"Full output (redacted) · {service} · task {task}",
            full_output_text(result.output, redactor).encode())


def run_view(*, service: str, environment: str, command: str, requester: str, redactor: Redactor | None,
             approved_by: tuple[str, ...] = (), reason: str | None = None, **facts: Any) -> RunView:
    """The header facts of a run, with the command and the reason redacted: people paste tokens into
    commands (``curl -H 'Authorization: Bearer …'``), and the message must not repeat them."""
    redact = _or_builtin(redactor).redact
    return RunView(service=service, environment=environment, command=redact(command), requester=requester,
                   approved_by=approved_by, reason=redact(reason) if reason else None, **facts)
