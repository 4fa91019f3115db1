"""Output of a command, from PTY bytes to what Slack shows. All pure.

    bytes ──BoundedCapture──▶ CapturedOutput ──clean──▶ text ──redact──▶ OutputView ──render──▶ (text, blocks)
                                     └────────── file view ──clean──▶ redact ──▶ full output file

Redaction runs on whole cleaned texts (the head, the tail, the file), never on chunks, so a secret split
across network messages is whole again when it is looked at; the capture moves its cuts to line
boundaries, and where a cut still falls inside a line the partial word at the cut is dropped too, so no
fragment of a token is shown on either side of the gap.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from bot.output.capture import BoundedCapture, CapturedOutput, CaptureLimits
from bot.output.clean import clean_terminal_output
from bot.output.redact import Redactor
from bot.output.render import OutputView, RunView, TaskResultView, gap_line, render_result

__all__ = [
    "BoundedCapture", "CaptureLimits", "CapturedOutput", "OutputView", "Redactor", "RunView", "TaskResultView",
    "clean_terminal_output", "full_output_text", "prepare_output", "render_result", "run_view", "task_result_view",
]

# Characters a token can be made of: what is dropped at a cut that falls inside a line.
_TOKEN_END = re.compile(r"[A-Za-z0-9+/=_\-.%:@~]+\Z")
_TOKEN_START = re.compile(r"\A[A-Za-z0-9+/=_\-.%:@~]+")


def _trim_cut_edges(head: str, tail: str, *, head_cut: bool, tail_cut: bool) -> tuple[str, str, int]:
    """Drop a partial token at each side of a mid-line cut; returns the bytes dropped."""
    dropped = 0
    if head_cut and (m := _TOKEN_END.search(head)):
        dropped += len(m.group().encode())
        head = head[: m.start()]
    if tail_cut and (m := _TOKEN_START.match(tail)):
        dropped += len(m.group().encode())
        tail = tail[m.end():]
    return head, tail, dropped


def prepare_output(captured: CapturedOutput, redactor: Redactor) -> OutputView:
    """The message view of a capture: cleaned, redacted, ready for ``render``."""
    head = clean_terminal_output(captured.head)
    tail = clean_terminal_output(captured.tail)
    extra = 0
    if captured.truncated:
        head, tail, extra = _trim_cut_edges(head, tail, head_cut=not captured.head.endswith(b"\n"),
                                            tail_cut=not captured.tail_starts_line)
    return OutputView(head=redactor.redact(head), tail=redactor.redact(tail),
                      dropped_lines=captured.dropped_lines, dropped_bytes=captured.dropped_bytes + extra)


def full_output_text(captured: CapturedOutput, redactor: Redactor) -> str:
    """The "full (bounded) output" file: the file view, cleaned and redacted, with a line where the
    middle was left out (saying how much, and the SHA-256 of everything the command printed)."""
    head = clean_terminal_output(captured.file_head)
    if not captured.file_truncated:
        return redactor.redact(head)
    tail = clean_terminal_output(captured.file_tail)
    head, tail, extra = _trim_cut_edges(head, tail, head_cut=not captured.file_head.endswith(b"\n"),
                                        tail_cut=not captured.file_tail_starts_line)
    head = redactor.redact(head)
    if head and not head.endswith("\n"):
        head += "\n"
    gap = gap_line(captured.file_dropped_lines, captured.file_dropped_bytes + extra, "left out of this file")
    return (f"{head}{gap}\n(total {captured.total_bytes:,} bytes, sha256 {captured.sha256})\n"
            f"{redactor.redact(tail)}")


def run_view(*, service: str, environment: str, command: str, requester: str, redactor: Redactor,
             approved_by: tuple[str, ...] = (), reason: str | None = None) -> RunView:
    """The header facts of a run, with the command and the reason redacted: people paste tokens into
    commands (``curl -H 'Authorization: Bearer …'``), and the message must not repeat them."""
    return RunView(service=service, environment=environment, command=redactor.redact(command),
                   requester=requester, approved_by=approved_by,
                   reason=redactor.redact(reason) if reason else reason)


class _TargetLike(Protocol):
    task_id: str
    container: str


class _ExecResultLike(Protocol):  # bot.runner.ExecResult, without importing the runner
    target: Any
    status: Any
    exit_code: int | None
    duration_s: float
    output: CapturedOutput
    error: Any


def task_result_view(result: _ExecResultLike, redactor: Redactor) -> TaskResultView:
    """A ``bot.runner.ExecResult`` as ``render`` needs it (output cleaned and redacted, error as text)."""
    error = result.error
    error_text = None
    if error is not None:
        error_text = redactor.redact(error.user_text() if hasattr(error, "user_text") else str(error))
    return TaskResultView(
        task_id=result.target.task_id, container=result.target.container, status=result.status,
        exit_code=result.exit_code, duration_s=result.duration_s,
        output=prepare_output(result.output, redactor), error=error_text,
    )
