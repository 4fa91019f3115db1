"""Slack Block Kit for every message the bot posts. Pure: data in, ``(text, blocks)`` out.

``text`` is the notification fallback (what a phone shows); ``blocks`` is the message. Slack's limits,
and how they are kept (docs.slack.dev/reference/block-kit; docs/slack-limits.md):

* a section's text is at most 3,000 characters, counted **after** escaping ``& < >`` (``&amp;`` is five
  characters). Output is therefore cut on the raw text (never inside an entity) while measuring its
  escaped length; characters outside the BMP are counted twice (UTF-16), to be safe;
* output sits in a code block; a run of backticks inside it would close the block early, so a zero-width
  space is put between consecutive backticks (invisible, and the fence stays balanced);
* at most 50 blocks and, in practice, ~12,000 characters of block text per message (``msg_blocks_too_long``
  above ~13k); fan-out results shrink each task's share and summarise tasks beyond what fits;
* a button's ``value`` is at most 2,000 characters, a confirm dialog's title 100 and text 300.

Inputs are plain views (``RunView``, ``TaskResultView``, ``OutputView``, ``ApprovalView``) so this module
knows nothing of AWS or Slack payloads; ``bot.output`` builds them from runner results.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from bot.errors import BotError, PolicyDenied, UsageError
from bot.output.cut import ELLIPSIS, Cut, fit_prefix, keep_head, keep_tail

Block = dict[str, Any]
Status = Literal["ok", "failed", "timeout", "cancelled", "error"]
ApprovalState = Literal["pending", "approved", "running", "finished", "failed", "denied", "expired", "cancelled"]

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
MESSAGE_BUDGET = 12_000  # characters of block text per message
BUTTON_VALUE_LIMIT = 2000
FALLBACK_LIMIT = 300  # notification text: short is better, Slack truncates far above this
COMMAND_SHOWN = 1500  # characters of a command shown (the exact command is in the audit log)
_FENCE = "```"

# action_ids of the buttons (handlers/actions.py routes on these).
APPROVE_ACTION, DENY_ACTION, CANCEL_ACTION = "ecs_exec_approve", "ecs_exec_deny", "ecs_exec_cancel"
PROBE_ACTION = "ecs_exec_probe"  # on a result that failed to run: ECS Exec's live checklist for that task
# The "Run on ECS…" message shortcut and its modal (handlers/shortcuts.py; the manifests name the shortcut).
RUN_SHORTCUT, RUN_MODAL = "ecs_exec_run_shortcut", "ecs_exec_run_modal"
RUN_MODAL_SERVICE, RUN_MODAL_COMMAND, RUN_MODAL_REASON = "service", "command", "reason"
MODAL_OPTIONS = 100  # static_select options (docs.slack.dev/reference/block-kit/block-elements)
MODAL_METADATA_LIMIT = 3000  # private_metadata

STATUS_EMOJI: dict[str, str] = {"ok": "✅", "failed": "❌", "timeout": "⏱", "error": "⚠️", "cancelled": "🛑"}
_STATUS_RANK = {"error": 0, "timeout": 1, "failed": 2, "cancelled": 3, "ok": 4}


class SlackMessage(NamedTuple):
    text: str
    blocks: list[Block]


# -- views ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputView:
    """One task's output, already cleaned and redacted. ``tail`` is non-empty only after a cut."""

    head: str
    tail: str = ""
    dropped_lines: int = 0  # lines between head and tail that were not kept
    dropped_bytes: int = 0

    @property
    def truncated(self) -> bool:
        return self.dropped_bytes > 0


@dataclass(frozen=True)
class RunView:
    service: str
    environment: str
    command: str  # exactly as run
    requester: str  # Slack user id
    approved_by: tuple[str, ...] = ()
    reason: str | None = None
    request_id: str | None = None  # what `ecs-exec-bot audit --request` takes
    cluster: str | None = None  # the real ECS cluster and service behind the catalogue name
    ecs_service: str | None = None
    timeout_s: float | None = None  # the budget a timed-out command ran out of
    max_timeout_s: float | None = None  # how far it may be raised (bot.config.MAX_TIMEOUT_S)


@dataclass(frozen=True)
class TaskResultView:
    task_id: str
    container: str
    status: Status
    exit_code: int | None
    duration_s: float
    output: OutputView
    error: str | None = None  # one sentence (+ fix) when status is "error"
    note: str | None = None  # what the reader must know about the output (e.g. the connection dropped at the end)


@dataclass(frozen=True)
class LiveTaskView:
    """A running task's progress so far; ``tail`` is its last lines, cleaned and redacted."""

    task_id: str
    bytes: int
    lines: int
    tail: str = ""


@dataclass(frozen=True)
class LiveView:
    """What the "running…" message shows while the command runs (live progress)."""

    elapsed_s: float
    tasks: tuple[LiveTaskView, ...] = ()


# Characters of a live tail shown (a few lines: the final result shows the output properly).
LIVE_TAIL_SHOWN = 1500


@dataclass(frozen=True)
class ApprovalView:
    request_id: str
    requester: str
    service: str
    environment: str
    command: str
    expires_at: int  # epoch seconds
    approver_users: tuple[str, ...] = ()
    approver_groups: tuple[str, ...] = ()
    min_approvals: int = 1
    reason: str | None = None
    task: str | None = None  # a specific task, or None for "one running task"
    all_tasks: bool = False
    state: ApprovalState = "pending"
    decided_by: tuple[str, ...] = ()  # approvers, or who denied / cancelled
    votes: int = 0  # approvals so far while pending
    # Used by the approvals flow (handlers/actions.py); the defaults keep the plain rendering.
    button_value: str | None = None  # value of every button (default: request_id)
    cancel: bool = False  # a Cancel button (the requester's) while pending / approved / running
    break_glass: bool = False  # the requester approved their own request under a break-glass rule
    state_reason: str | None = None  # why it was denied / failed


class _DoctorReport(Protocol):
    # Read-only members, so frozen dataclasses and pydantic models are reports too.
    @property
    def title(self) -> str: ...

    @property
    def checks(self) -> Sequence[Any]: ...  # each with .name, .status, .detail, .fix


# -- text primitives -------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters (docs.slack.dev/messaging/formatting-message-text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_BACKTICK_RUN = re.compile(r"`(?=`)")
_ASTRAL = re.compile(r"[\U00010000-\U0010FFFF]")


def _defuse_backticks(text: str) -> str:
    return _BACKTICK_RUN.sub("`\u200b", text) if "``" in text else text


def slack_len(text: str) -> int:
    """Length as Slack may count it: UTF-16 code units (an emoji outside the BMP counts twice)."""
    return len(text) + (len(_ASTRAL.findall(text)) if not text.isascii() else 0)


def _shown_len(raw: str) -> int:
    """Length of ``raw`` once escaped and defused, as it will sit inside a code block."""
    return slack_len(_defuse_backticks(escape(raw)))


def code_block(raw: str) -> str:
    """``raw`` as a Slack code block: escaped, backtick runs defused, fences on their own lines."""
    body = _defuse_backticks(escape(raw.rstrip("\n")))
    return f"{_FENCE}\n{body}\n{_FENCE}" if body else f"{_FENCE}\n \n{_FENCE}"


_CODE_OVERHEAD = len(_FENCE) * 2 + 2  # fences and their newlines


def inline_code(raw: str, limit: int = COMMAND_SHOWN) -> str:
    """A command in inline code, or in a code block when backticks/newlines would break inline code."""
    shown = raw if len(raw) <= limit else raw[: fit_prefix(raw, limit - 1, _shown_len)] + ELLIPSIS
    if "`" in shown or "\n" in shown:
        return code_block(shown)
    return f"`{escape(shown)}`"


@dataclass(frozen=True)
class _Fitted:
    head: str
    tail: str
    hidden_lines: int
    hidden_bytes: int

    @property
    def cut(self) -> bool:
        return self.hidden_bytes > 0


def _fit_output(out: OutputView, head_budget: int, tail_budget: int) -> _Fitted:
    """What of ``out`` fits: head and tail parts within their budgets (code-block text, fences included).
    What is shown at each cut (whole lines only) is ``bot.output.cut``'s rule; the budgets are ours."""
    hb, tb = head_budget - _CODE_OVERHEAD, tail_budget - _CODE_OVERHEAD
    if not out.truncated:
        head = keep_head(out.head, budget=hb, measure=_shown_len)
        # After a long first line's start, the rest of that line opens the remainder: never shown alone.
        tail = keep_tail(head.hidden, start_cut=head.line_start, budget=tb, measure=_shown_len)
        return _Fitted(_with_ellipsis(head), tail.shown, tail.hidden_lines, tail.hidden_bytes)
    head = keep_head(out.head, budget=hb, measure=_shown_len)
    tail = keep_tail(out.tail, budget=tb, measure=_shown_len)
    # What the head hides is whole lines, or the rest of a long first line whose newline (if any) is among
    # them or in the capture's gap: its newlines are its lines.
    lines = out.dropped_lines + head.hidden.count("\n") + tail.hidden_lines
    hidden_bytes = out.dropped_bytes + head.hidden_bytes + tail.hidden_bytes
    return _Fitted(_with_ellipsis(head), tail.shown, max(lines, 1), hidden_bytes)


def _with_ellipsis(head: Cut) -> str:
    # Render's input is redacted whole lines, so the start of a long one needs only the mark of the cut.
    return head.shown + ELLIPSIS if head.line_start else head.shown


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:,.0f} KB" if n >= 10 * 1024 else f"{n / 1024:.1f} KB"
    if n < 1024**3:
        return f"{n / 1024 ** 2:.1f} MB"
    return f"{n / 1024 ** 3:.1f} GB"


def gap_line(lines: int, nbytes: int, what: str = "not shown") -> str:
    noun = "line" if lines == 1 else "lines"
    return f"··· {lines:,} {noun} ({human_bytes(nbytes)}) {what} ···"


def human_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def short_task_id(task_id: str) -> str:
    """``3f2a9c…e1``: enough to tell tasks apart in a channel."""
    tid = task_id.rsplit("/", 1)[-1]
    return tid if len(tid) <= 10 else f"{tid[:6]}…{tid[-2:]}"


def _prose(text: str) -> str:
    """Text we did not write (reasons, names, error sentences) shown as mrkdwn: escaped, and with
    backtick runs defused so it cannot open or close a code block."""
    return _defuse_backticks(escape(text))


def _user(user_id: str) -> str:
    return f"<@{user_id}>" if re.fullmatch(r"[UW][A-Z0-9]{2,20}", user_id) else _prose(user_id)


def _group(group_id: str) -> str:
    return f"<!subteam^{group_id}>" if re.fullmatch(r"S[A-Z0-9]{2,20}", group_id) else _prose(group_id)


def _date(epoch: int) -> str:
    """Slack renders this in the reader's time zone; the fallback is UTC."""
    import datetime as _dt

    fallback = _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{fallback}>"


def _clip(text: str, limit: int) -> str:
    """Clip already-formatted mrkdwn to ``limit``; only used for prose we built (no entities are cut
    because the cut moves before any ``&`` within the last 6 characters)."""
    if slack_len(text) <= limit:
        return text
    cut = limit - 1
    while slack_len(text[:cut]) > limit - 1:
        cut -= 1
    amp = text.rfind("&", max(0, cut - 6), cut)
    if amp >= 0 and ";" not in text[amp:cut]:
        cut = amp
    return text[:cut] + "…"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_LIMIT)}}


def _context(*parts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(p, SECTION_LIMIT)} for p in parts]}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": text if len(text) <= limit else text[: limit - 1] + "…", "emoji": True}


def _fallback(text: str) -> str:
    # The notification text quotes user input (the command, a reason): escaped, so `<!channel>` typed inside
    # an allowed command cannot ping a channel from the bot's notification. Escape, then cut on a whole entity.
    text = escape(text)
    if len(text) <= FALLBACK_LIMIT:
        return text
    cut = text[: FALLBACK_LIMIT - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


# -- results ---------------------------------------------------------------------------------------------


def _status_words(r: TaskResultView) -> str:
    if r.status == "timeout":
        return "timed out"
    if r.status == "cancelled":
        return "cancelled"
    if r.status == "error":
        return "error"
    return "exit status unknown" if r.exit_code is None else f"exit {r.exit_code}"


def _who(run: RunView) -> str:
    who = f"by {_user(run.requester)}"
    if run.approved_by:
        who += " · approved by " + ", ".join(_user(u) for u in run.approved_by)
    return who


def _where(run: RunView) -> str:
    """The real cluster/service and the request id (for `audit --request`), on every result."""
    parts = []
    if run.cluster and run.ecs_service:
        parts.append(f"{_prose(run.cluster)}/{_prose(run.ecs_service)}")
    if run.request_id:
        parts.append(f"req `{_prose(run.request_id)}`")
    return " · ".join(parts)


def _timeout_words(run: RunView) -> str:
    budget = f"its {human_duration(run.timeout_s)} timeout" if run.timeout_s else "its timeout"
    limit = f" (up to {human_duration(run.max_timeout_s)})" if run.max_timeout_s else ""
    return (f"⏱ The command did not finish within {budget}, so it was interrupted (Ctrl-C) and its session "
            f"ended; the output is what it printed until then. Fix: give it a longer `--timeout`{limit}, "
            "or narrow the command.")


def result_cut(result: TaskResultView) -> bool:
    """Whether the single-task result message leaves part of the output out (then attach the file)."""
    return _fit_output(result.output, SECTION_LIMIT, SECTION_LIMIT).cut


def _task_budgets(tasks: int) -> tuple[int, int]:
    if tasks <= 1:
        return SECTION_LIMIT, SECTION_LIMIT
    # The header, the per-task gap lines and the summary take up to ~2,500 characters.
    share = min(SECTION_LIMIT, (MESSAGE_BUDGET - 2500) // min(tasks, _FANOUT_SHOWN))
    return share, 0


_FANOUT_SHOWN = 12  # tasks shown in full in a fan-out message; the rest are summarised (>= 790 each)


def render_result(
    run: RunView, results: Sequence[TaskResultView], *, cancel_reason: str | None = None,
    extra: Sequence[Block] = (),
) -> SlackMessage:
    """The final message: one task in detail, or several grouped per task (worst first); who cancelled
    it when a task was cancelled. ``extra``: blocks that must end the message (the Filter button), kept
    within the block limit."""
    if not results:
        raise ValueError("render_result needs at least one task result")
    text, blocks = _render_single(run, results[0]) if len(results) == 1 else _render_fanout(run, results)
    if cancel_reason and any(r.status == "cancelled" for r in results):
        # The reason is ours ("cancelled by <@U…>", "the bot is restarting"): mrkdwn, not escaped.
        blocks = [*blocks, _context(f"🛑 {cancel_reason}")]
    if extra:
        blocks = [*blocks[: MAX_BLOCKS - len(extra)], *extra]
    return SlackMessage(text, blocks)


def _render_single(run: RunView, r: TaskResultView) -> SlackMessage:
    emoji = STATUS_EMOJI[r.status]
    title = (f"{emoji} *{_prose(run.service)}* ({_prose(run.environment)}) · {_status_words(r)} · "
             f"{human_duration(r.duration_s)}")
    blocks: list[Block] = [
        _section(f"{title}\n{inline_code(run.command)}"),
        _context(" · ".join(filter(None, (
            f"task {_prose(short_task_id(r.task_id))} · container {_prose(r.container)} · {_who(run)}",
            _where(run))))),
    ]
    if r.status == "error" and r.error:
        blocks.append(_section(f"⚠️ {_prose(r.error)}"))
    if r.status == "timeout":
        blocks.append(_context(_timeout_words(run)))
    if r.note:
        blocks.append(_context(f"ℹ️ {_prose(_clip(r.note, 1000))}"))
    fitted = _fit_output(r.output, SECTION_LIMIT, SECTION_LIMIT)
    if not fitted.head and not fitted.tail:
        blocks.append(_context("_(no output)_"))
    else:
        blocks.append(_section(code_block(fitted.head)))
        if fitted.cut:
            blocks.append(_context(gap_line(fitted.hidden_lines, fitted.hidden_bytes)))
        if fitted.tail:
            blocks.append(_section(code_block(fitted.tail)))
        if fitted.cut:
            blocks.append(_context("📎 full output (redacted) in the thread"))
    if r.status == "error":
        blocks.append(probe_button(run.service, r.task_id))
    text = f"{emoji} {run.service} ({run.environment}) · {_status_words(r)} · {run.command}"
    return SlackMessage(_fallback(text), blocks)


def probe_button(service: str, task_id: str) -> Block:
    """"Probe": run `true` through ECS Exec on that task and show the checklist next to the live outcome."""
    value = f"{service}|{task_id}"
    _check_value(value)
    return {"type": "actions", "block_id": f"probe-{task_id}"[:255], "elements": [{
        "type": "button", "action_id": PROBE_ACTION, "text": _plain("Probe", 75), "value": value,
    }]}


def _render_fanout(run: RunView, results: Sequence[TaskResultView]) -> SlackMessage:
    ordered = sorted(results, key=lambda r: _STATUS_RANK[r.status])
    counts = " ".join(f"{STATUS_EMOJI[s]} {n}" for s in _STATUS_RANK
                      if (n := sum(1 for r in results if r.status == s)))
    worst = STATUS_EMOJI[ordered[0].status]
    blocks: list[Block] = [
        _section(f"{worst} *{_prose(run.service)}* ({_prose(run.environment)}) · {len(results)} tasks · "
                 f"{counts}\n{inline_code(run.command, 500)}"),
        _context(" · ".join(filter(None, (_who(run), _where(run))))),
    ]
    budget, _ = _task_budgets(len(results))
    any_cut = False
    for r in ordered[:_FANOUT_SHOWN]:
        line, fitted = _fanout_task(r, budget)
        if fitted.head:
            blocks.append(_section(f"{line}\n{code_block(fitted.head)}"))
        else:
            blocks.append(_section(f"{line} · _(no output)_" if not fitted.cut else line))
        if fitted.cut:
            any_cut = True
            blocks.append(_context(gap_line(fitted.hidden_lines, fitted.hidden_bytes)))
    rest = ordered[_FANOUT_SHOWN:]
    if rest:
        rest_counts = " ".join(f"{STATUS_EMOJI[s]} {n}" for s in _STATUS_RANK
                               if (n := sum(1 for r in rest if r.status == s)))
        blocks.append(_context(f"… and {len(rest)} more tasks ({rest_counts}): their output is in the thread"))
        any_cut = True
    if any_cut:
        blocks.append(_context("📎 full output (redacted) in the thread"))
    text = f"{worst} {run.service} ({run.environment}) · {len(results)} tasks · {counts} · {run.command}"
    return SlackMessage(_fallback(text), blocks[:MAX_BLOCKS])


def _fanout_task(r: TaskResultView, budget: int) -> tuple[str, _Fitted]:
    """A task's status line and the head of its output that fits the task's share of the message."""
    line = (f"{STATUS_EMOJI[r.status]} task {_prose(short_task_id(r.task_id))} · {_prose(r.container)} · "
            f"{_status_words(r)} · {human_duration(r.duration_s)}")
    if r.status == "error" and r.error:
        line = _clip(f"{line}\n⚠️ {_prose(r.error)}", budget // 2)
    if r.note:
        line = _clip(f"{line}\nℹ️ {_prose(r.note)}", budget // 2)
    room = max(budget - slack_len(line) - 1, _CODE_OVERHEAD + 40)
    return line, _fit_output(r.output, room, 0)


def fanout_cuts(results: Sequence[TaskResultView]) -> list[bool]:
    """Per result (in the given order): does the fan-out message leave part of its output out? Then
    the caller attaches that task's full output in the thread."""
    budget, _ = _task_budgets(len(results))
    order = sorted(range(len(results)), key=lambda i: _STATUS_RANK[results[i].status])
    shown = set(order[:_FANOUT_SHOWN])
    return [(_fanout_task(r, budget)[1].cut if i in shown else bool(r.output.head or r.output.tail))
            for i, r in enumerate(results)]


# -- running / cancel ------------------------------------------------------------------------------------


def render_running(
    run: RunView, task_ids: Sequence[str], *, run_id: str, live: LiveView | None = None
) -> SlackMessage:
    """The "running…" message with a Cancel button whose value carries ``run_id``; with ``live``, also
    the elapsed time, lines and bytes so far and the last lines (the final result replaces all of it)."""
    _check_value(run_id)
    tasks = ", ".join(_prose(short_task_id(t)) for t in task_ids[:5])
    if len(task_ids) > 5:
        tasks += f" (+{len(task_ids) - 5} more)"
    where = f"task {tasks}" if len(task_ids) == 1 else f"{len(task_ids)} tasks: {tasks}"
    head = f"⏳ Running on *{_prose(run.service)}* ({_prose(run.environment)}) · {where}"
    blocks: list[Block] = [
        _section(f"{head}\n{inline_code(run.command)}"),
        *(_live_blocks(live) if live is not None else []),
        _context(_who(run)),
        {"type": "actions", "block_id": f"run-{run_id}"[:255], "elements": [{
            "type": "button", "action_id": CANCEL_ACTION, "text": _plain("Cancel", 75), "style": "danger",
            "value": run_id,
            "confirm": _confirm("Stop this command?", "The command is interrupted (Ctrl-C) and its session ended.",
                                "Stop it", "Keep running"),
        }]},
    ]
    return SlackMessage(_fallback(f"⏳ Running on {run.service} ({run.environment}): {run.command}"), blocks)


def _live_blocks(live: LiveView) -> list[Block]:
    lines = sum(t.lines for t in live.tasks)
    nbytes = sum(t.bytes for t in live.tasks)
    noun = "line" if lines == 1 else "lines"
    summary = f"⏱ {human_duration(live.elapsed_s)} · {lines:,} {noun} · {human_bytes(nbytes)} so far"
    if len(live.tasks) > 1:
        summary += " · " + ", ".join(
            f"{_prose(short_task_id(t.task_id))}: {t.lines:,}" for t in live.tasks[:5]
        )
    blocks: list[Block] = [_context(summary)]
    # The most recent lines of the task that printed last (one tail keeps the message short).
    latest = max((t for t in live.tasks if t.tail), key=lambda t: t.bytes, default=None)
    if latest is not None:
        # Whole lines only (bot/output/cut.py): a line too long for the budget is left out, never its end.
        tail = keep_tail(latest.tail, budget=LIVE_TAIL_SHOWN, measure=_shown_len).shown
        if tail:
            blocks.append(_section(code_block(tail)))
    return blocks


def _confirm(title: str, text: str, yes: str, no: str) -> dict[str, Any]:
    return {"title": _plain(title, 100), "text": {"type": "mrkdwn", "text": _clip(text, 300)},
            "confirm": _plain(yes, 30), "deny": _plain(no, 30)}


def _check_value(value: str) -> None:
    if not value or len(value) > BUTTON_VALUE_LIMIT:
        raise ValueError(f"a button value must be 1..{BUTTON_VALUE_LIMIT} characters")


# -- the "Run on ECS…" modal ------------------------------------------------------------------------------


def render_run_modal(services: Sequence[tuple[str, str]], private_metadata: str) -> dict[str, Any]:
    """The modal of the message shortcut: a service (``(alias, label)``, the first 100), the command and
    an optional reason. ``private_metadata`` carries where the answer goes (the message's thread)."""
    if len(private_metadata) > MODAL_METADATA_LIMIT:
        raise ValueError(f"private_metadata must be at most {MODAL_METADATA_LIMIT} characters")
    options = [{"text": _plain(label, 75), "value": alias[:150]} for alias, label in services[:MODAL_OPTIONS]]

    def field(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False,
              hint: str | None = None) -> Block:
        block: Block = {"type": "input", "block_id": block_id, "label": _plain(label, 2000), "element": element,
                        "optional": optional}
        if hint:
            block["hint"] = _plain(hint, 2000)
        return block

    return {
        "type": "modal",
        "callback_id": RUN_MODAL,
        "title": _plain("Run on ECS", 24),
        "submit": _plain("Run", 24),
        "close": _plain("Cancel", 24),
        "private_metadata": private_metadata,
        "blocks": [
            field(RUN_MODAL_SERVICE, "Service", {"type": "static_select", "action_id": RUN_MODAL_SERVICE,
                                                 "placeholder": _plain("Pick a service", 150), "options": options}),
            field(RUN_MODAL_COMMAND, "Command", {
                "type": "plain_text_input", "action_id": RUN_MODAL_COMMAND, "max_length": 3000,
                "placeholder": _plain("tail -n 100 /var/log/nginx/error.log", 150),
            }, hint="Exactly as it will run; options such as --task or --all-tasks go first."),
            field(RUN_MODAL_REASON, "Reason", {"type": "plain_text_input", "action_id": RUN_MODAL_REASON,
                                               "max_length": 300}, optional=True),
        ],
    }


# -- the command builder (a modal) and App Home ---------------------------------------------------------

# handlers/builder.py and handlers/home.py route on these.
BUILDER_MODAL = "ecs_exec_builder"
BUILDER_CHANNEL, BUILDER_SERVICE, BUILDER_PATTERN = (
    "ecs_exec_builder_channel", "ecs_exec_builder_service", "ecs_exec_builder_pattern")
BUILDER_COMMAND, BUILDER_REASON = "command", "reason"  # action ids; the command's block id may carry a suffix
HOME_BUILD_ACTION = "ecs_exec_home_build"
VIEW_BLOCKS = 100  # modals and Home tabs
HOME_APPROVALS = 8  # approvals shown on Home (4-5 blocks each)


@dataclass(frozen=True)
class BuilderView:
    """The builder modal at one step (`bot.builder.builder_view`)."""

    private_metadata: str
    channel_picker: bool  # opened from Home: the channel is a field
    channel: str | None
    services: tuple[tuple[str, str], ...]  # (alias, label)
    service: str | None = None
    patterns: tuple[tuple[str, str], ...] = ()  # (value, label) for the chosen service
    pattern: str | None = None
    prefill: str = ""  # the command field's initial text (the chosen pattern's literal words)
    note: str | None = None  # nothing to offer: why


def builder_command_block(view: BuilderView) -> str:
    """A new block id whenever the pre-fill changes: Slack keeps what was typed in a block it already
    shows and would ignore the new ``initial_value``."""
    return f"{BUILDER_COMMAND}-{view.pattern}" if view.pattern is not None else BUILDER_COMMAND


def render_builder(view: BuilderView) -> dict[str, Any]:
    """Made for a phone: the channel (from Home only), the service (pre-selected when there is one), the
    allowed commands of that service (choosing one pre-fills the command), the command, a reason."""
    if len(view.private_metadata) > MODAL_METADATA_LIMIT:
        raise ValueError(f"private_metadata must be at most {MODAL_METADATA_LIMIT} characters")

    def option(value: str, label: str) -> dict[str, Any]:
        return {"text": _plain(label, 75), "value": value[:150]}

    def select(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False) -> Block:
        return {"type": "input", "block_id": block_id, "label": _plain(label, 2000), "element": element,
                "optional": optional, "dispatch_action": True}

    blocks: list[Block] = []
    if view.channel_picker:
        picker: dict[str, Any] = {"type": "conversations_select", "action_id": BUILDER_CHANNEL,
                                  "placeholder": _plain("Where the result goes", 150)}
        if view.channel:
            picker["initial_conversation"] = view.channel
        blocks.append(select("channel", "Channel", picker))
    elif view.channel:
        blocks.append(_context(f"Runs from <#{view.channel}>; the result is posted there."))
    if view.note:
        blocks.append(_section(f"⛔ {_prose(view.note)}"))
    if view.services:
        services = [option(alias, label) for alias, label in view.services[:MODAL_OPTIONS]]
        element: dict[str, Any] = {"type": "static_select", "action_id": BUILDER_SERVICE,
                                   "placeholder": _plain("Pick a service", 150), "options": services}
        chosen = next((o for o in services if o["value"] == view.service), None)
        if chosen is not None:
            element["initial_option"] = chosen
        blocks.append(select("service", "Service", element))
    if view.patterns:
        patterns = [option(value, label) for value, label in view.patterns[:MODAL_OPTIONS]]
        element = {"type": "static_select", "action_id": BUILDER_PATTERN,
                   "placeholder": _plain("Pick one to start from", 150), "options": patterns}
        chosen = next((o for o in patterns if o["value"] == view.pattern), None)
        if chosen is not None:
            element["initial_option"] = chosen
        blocks.append(select("pattern", "Allowed commands", element, optional=True))
    command: dict[str, Any] = {"type": "plain_text_input", "action_id": BUILDER_COMMAND, "max_length": 3000,
                               "placeholder": _plain("tail -n 100 /var/log/nginx/error.log", 150)}
    if view.prefill:
        command["initial_value"] = view.prefill
    blocks.append({"type": "input", "block_id": builder_command_block(view), "label": _plain("Command", 2000),
                   "element": command, "hint": _plain("* is any word; --task ID or --all-tasks go first.", 2000)})
    blocks.append({"type": "input", "block_id": BUILDER_REASON, "label": _plain("Reason", 2000), "optional": True,
                   "element": {"type": "plain_text_input", "action_id": BUILDER_REASON, "max_length": 300}})
    return {
        "type": "modal",
        "callback_id": BUILDER_MODAL,
        "title": _plain("Run on ECS", 24),
        "submit": _plain("Run", 24),
        "close": _plain("Cancel", 24),
        "private_metadata": view.private_metadata,
        "blocks": blocks,
    }


_ARCHIVE_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
_ARCHIVE_TS = re.compile(r"^[0-9]{1,12}\.[0-9]{1,9}$")


def message_link(channel: str | None, ts: str | None) -> str | None:
    """A link to a message (Slack redirects it to the app): ``https://slack.com/archives/<channel>/p<ts>``."""
    if not channel or not ts or not _ARCHIVE_CHANNEL.match(channel) or not _ARCHIVE_TS.match(ts):
        return None
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


@dataclass(frozen=True)
class RecentRunView:
    state: str  # a run state, or the request's last audit event (refused, failed…)
    service: str
    environment: str
    command: str  # redacted
    at: int  # epoch seconds
    link: str | None = None


@dataclass(frozen=True)
class HomeView:
    """App Home for one user: approvals waiting for them, their recent requests, what they may run."""

    approvals: tuple[tuple[ApprovalView, str | None], ...] = ()  # (the card's view, a link to the card)
    more_approvals: int = 0  # waiting, beyond those shown
    recent: tuple[RecentRunView, ...] = ()
    allowed: tuple[str, ...] = ()  # `bot.policy.allowed_summary` lines
    notice: str | None = None  # e.g. why the last click was refused


_RECENT_EMOJI = {
    "pending": "✋", "approved": "👍", "running": "▶️", "finished": "🏁", "failed": "⚠️", "denied": "🚫",
    "expired": "⌛", "cancelled": "🛑", "refused": "⛔", "requested": "⏳",
}


def render_home(view: HomeView) -> dict[str, Any]:
    """The Home tab (``views.publish``). The approvals are the cards' own blocks: same buttons, same action
    ids and values, so one handler serves both."""
    blocks: list[Block] = [{"type": "header", "text": _plain("ECS Exec", 150)}]
    if view.notice:
        blocks.append(_section(_prose(view.notice)))
    blocks.append({"type": "actions", "block_id": "home-build", "elements": [{
        "type": "button", "action_id": HOME_BUILD_ACTION, "text": _plain("Build a command", 75), "style": "primary",
        "value": "build"}]})
    blocks += [{"type": "divider"}, _section("*Waiting for your approval*")]
    if not view.approvals:
        blocks.append(_context("Nothing is waiting for you."))
    for approval, link in view.approvals[:HOME_APPROVALS]:
        card = render_approval(approval).blocks
        if link:
            card.insert(-1, _context(f"<{link}|Open the request>"))
        blocks += card
    more = view.more_approvals + max(len(view.approvals) - HOME_APPROVALS, 0)
    if more:
        blocks.append(_context(f"… and {more} more waiting (oldest first)"))
    blocks += [{"type": "divider"}, _section("*Your recent requests*")]
    lines = []
    for r in view.recent:
        where = f"<{r.link}|{_prose(r.service)}>" if r.link else _prose(r.service)
        lines.append(f"{_RECENT_EMOJI.get(r.state, '•')} {_prose(r.state)} · {where} ({_prose(r.environment)}) · "
                     f"{inline_code(r.command, 200)} · {_date(r.at)}")
    if lines:
        body, _ = _chunks("\n".join(lines), budget=6000)
        blocks += body
    else:
        blocks.append(_context("None in the last two weeks."))
    blocks += [{"type": "divider"}, _section("*You may run*")]
    room = VIEW_BLOCKS - len(blocks) - 1
    if view.allowed:
        body, left = _chunks("\n".join(f"• {_prose(line)}" for line in view.allowed), budget=6000)
        blocks += body[:room]
        if left or len(body) > room:
            blocks.append(_context("… and more: `/ecs-exec list` in a channel shows what applies there"))
    else:
        blocks.append(_context("No policy rule includes you (deny by default). Ask the bot's operators."))
    return {"type": "home", "blocks": blocks[:VIEW_BLOCKS]}


# -- refusals and errors (ephemeral) ---------------------------------------------------------------------


def render_run_error(run: RunView, sentence: str) -> SlackMessage:
    """A run that failed as a whole (its message said "running…"): the sentence, the command, who, where."""
    head = f"⚠️ *{_prose(run.service)}* ({_prose(run.environment)}): {_prose(sentence)}"
    blocks: list[Block] = [
        _section(f"{head}\n{inline_code(run.command)}"),
        _context(" · ".join(filter(None, (_who(run), _where(run))))),
    ]
    return SlackMessage(_fallback(f"⚠️ {run.service} ({run.environment}): {sentence}"), blocks)


def render_error(error: BotError) -> SlackMessage:
    """One sentence and the fix, for the requester only."""
    emoji = "⛔" if isinstance(error, PolicyDenied) else "❓" if isinstance(error, UsageError) else "⚠️"
    body = f"{emoji} *{_prose(error.message)}*"
    if error.fix:
        body += f"\n{_prose(error.fix)}"
    return SlackMessage(_fallback(f"{emoji} {error.user_text()}"), [_section(body)])


def render_internal_error(reference: str) -> SlackMessage:
    text = f"⚠️ Internal error, reference {reference}. Nothing else was done; the operators can trace it."
    return SlackMessage(_fallback(text), [_section(_prose(text))])


def render_notice(text: str) -> SlackMessage:
    """A plain one-line notice (already received, checking permissions, …)."""
    return SlackMessage(_fallback(text), [_section(_prose(text))])


# -- approvals -------------------------------------------------------------------------------------------


def _target_words(a: ApprovalView) -> str:
    where = f"*{_prose(a.service)}* ({_prose(a.environment)})"
    if a.all_tasks:
        return where + " · every running task"
    if a.task:
        return where + f" · task {_prose(short_task_id(a.task))}"
    return where


def _approvers(a: ApprovalView) -> str:
    who = [_user(u) for u in a.approver_users] + [_group(g) for g in a.approver_groups]
    return ", ".join(who) if who else "_nobody is configured to approve_"


# The card's header says where the request stands, not only "needed" (the state line gives the details).
_APPROVAL_HEADER = {
    "pending": "✋ *Approval needed*",
    "approved": "👍 *Approved*",
    "running": "▶️ *Approved*",
    "finished": "🏁 *Approved*",
    "failed": "⚠️ *Approved, then failed*",
    "denied": "🚫 *Denied*",
    "expired": "⌛ *Expired*",
    "cancelled": "🛑 *Cancelled*",
}


def approvals_left(n: int) -> str:
    """One wording for what a request still needs, everywhere it is said."""
    return "1 more approval" if n == 1 else f"{n} more approvals"


def render_approval(a: ApprovalView) -> SlackMessage:
    """The approval request in its current state; buttons only while pending (Approve has a confirm)."""
    value = a.button_value or a.request_id
    _check_value(value)
    why = f": {_prose(a.state_reason)}" if a.state_reason else ""
    state_line = {
        "pending": f"⏳ Waiting for {approvals_left(a.min_approvals - a.votes)} · expires {_date(a.expires_at)}",
        "approved": f"👍 Approved by {', '.join(_user(u) for u in a.decided_by)}",
        "running": f"▶️ Approved by {', '.join(_user(u) for u in a.decided_by)} · running…",
        "finished": f"🏁 Approved by {', '.join(_user(u) for u in a.decided_by)} · finished (result below)",
        "failed": f"⚠️ Failed{why or ': unknown error'}",
        "denied": f"🚫 Denied by {', '.join(_user(u) for u in a.decided_by)}{why}",
        "expired": f"⌛ Expired at {_date(a.expires_at)} without enough approvals",
        "cancelled": f"🛑 Cancelled by {', '.join(_user(u) for u in a.decided_by)}",
    }[a.state]
    blocks: list[Block] = [
        _section(f"{_APPROVAL_HEADER[a.state]} · {_user(a.requester)} wants to run on {_target_words(a)}\n"
                 f"{inline_code(a.command)}"),
        _context(f"reason: {_prose(a.reason) if a.reason else '—'}",
                 f"may approve: {_approvers(a)} · {a.min_approvals} needed"),
        _section(state_line),
    ]
    if a.break_glass:
        blocks.insert(2, _section(f"🚨 *Break-glass*: {_user(a.requester)} approved their own request."))
    buttons: list[Block] = []
    if a.state == "pending":
        buttons += [
            {"type": "button", "action_id": APPROVE_ACTION, "text": _plain("Approve", 75), "style": "primary",
             "value": value,
             "confirm": _confirm("Approve this command?",
                                 f"It runs on *{_prose(a.service)}* ({_prose(a.environment)}) as requested by "
                                 f"{_user(a.requester)}.", "Approve", "Back")},
            {"type": "button", "action_id": DENY_ACTION, "text": _plain("Deny", 75), "style": "danger",
             "value": value},
        ]
    if a.cancel and a.state in ("pending", "approved", "running"):
        buttons.append({"type": "button", "action_id": CANCEL_ACTION, "text": _plain("Cancel", 75), "value": value})
    if buttons:
        blocks.append({"type": "actions", "block_id": f"approval-{a.request_id}"[:255], "elements": buttons})
    text = f"Approval ({a.state}): {a.service} ({a.environment}) · {a.command}"
    return SlackMessage(_fallback(text), blocks)


# -- help, list, doctor ----------------------------------------------------------------------------------


def _chunks(mrkdwn: str, budget: int = MESSAGE_BUDGET - 1000) -> tuple[list[Block], int]:
    """Trusted mrkdwn as sections split at line ends, within the section limit and ``budget`` in total.
    Returns the blocks and how many lines did not fit."""
    blocks: list[Block] = []
    current, used = "", 0
    lines = mrkdwn.splitlines()
    for i, line in enumerate(lines):
        line = _clip(line, SECTION_LIMIT)
        if used + slack_len(current) + slack_len(line) + 1 > budget or len(blocks) >= MAX_BLOCKS - 3:
            if current:
                blocks.append(_section(current))
            return blocks, len(lines) - i
        candidate = f"{current}\n{line}" if current else line
        if slack_len(candidate) > SECTION_LIMIT:
            blocks.append(_section(current))
            used += slack_len(current)
            current = line
        else:
            current = candidate
    if current:
        blocks.append(_section(current))
    return blocks, 0


def render_help(usage: str) -> SlackMessage:
    """``usage`` is Slack mrkdwn written by us (bot.commands.HELP_TEXT), so it is not escaped."""
    blocks, _ = _chunks(usage)
    return SlackMessage(_fallback(usage.splitlines()[0] if usage else "Usage"), blocks or [_section("Usage")])


def render_list(lines: Sequence[str]) -> SlackMessage:
    """``/ecs-exec list``: what the user may run, one entry per line."""
    if not lines:
        text = "No policy rule includes you here, so you cannot run commands (deny by default)."
        return SlackMessage(text, [_section(f"⛔ {_prose(text)}\nAsk the bot's operators to add you to a rule.")])
    body, left = _chunks("\n".join(f"• {_prose(line)}" for line in lines))
    blocks = [_section("*You may run:*"), *body]
    if left:
        blocks.append(_context(f"… and {left} more"))
    return SlackMessage(_fallback(f"You may run {len(lines)} kinds of command."), blocks)


_DOCTOR_SYMBOL = {"green": "🟢", "yellow": "🟡", "red": "🔴"}


def render_doctor(report: _DoctorReport) -> SlackMessage:
    """A doctor report: one line per check, the fix under each non-green one, a verdict at the end."""
    lines = []
    worst = "green"
    for c in report.checks:
        status = str(c.status)
        if status == "red" or (status == "yellow" and worst == "green"):
            worst = status
        lines.append(f"{_DOCTOR_SYMBOL.get(status, '•')} *{_prose(c.name)}*: {_prose(c.detail)}")
        if c.fix and status != "green":
            lines.append(f"      ↳ fix: {_prose(c.fix)}")
    verdict = {"green": "✅ ECS Exec should work.", "yellow": "🟡 ECS Exec should work; see the warnings.",
               "red": "🔴 ECS Exec will not work until the red items are fixed."}[worst]
    body, left = _chunks("\n".join(lines))
    blocks = [_section(f"🩺 *{_prose(report.title)}*"), *body]
    if left:
        blocks.append(_context(f"… and {left} more lines (run `ecs-exec-bot doctor` for the whole report)"))
    blocks.append(_section(verdict))
    return SlackMessage(_fallback(f"{report.title}: {verdict}"), blocks)


__all__ = [
    "APPROVE_ACTION", "CANCEL_ACTION", "DENY_ACTION", "ApprovalView", "OutputView", "RunView", "SlackMessage",
    "TaskResultView", "code_block", "escape", "fanout_cuts", "gap_line", "render_approval", "render_doctor",
    "render_error", "render_help", "render_internal_error", "render_list", "render_notice", "render_result",
    "render_running", "result_cut", "slack_len",
]
