"""The `/ecs-exec` text → a request. Pure: no I/O; raises only ``UsageError``.

Grammar::

    /ecs-exec [OPTIONS] SERVICE [OPTIONS] [--] COMMAND…
    /ecs-exec help [TOPIC] | list | doctor SERVICE | run RUNBOOK [SERVICE]
    @ecs-exec filter [-F] [-i] [-v] [-c] [--head N | --tail N] PATTERN   (in a run's thread)

Options (before the service or right after it, before the command): ``--task ID``, ``--container
NAME``, ``--all-tasks``, ``--timeout SECONDS`` (``90``, ``90s``, ``5m``), ``--reason TEXT`` (quote it
when it has spaces); ``--opt=value`` works too. ``--`` ends the options (needed when the command
starts with ``-``). Everything after the service and its options is the command, kept exactly as
typed: quotes, inner spacing and all (only the surrounding whitespace is trimmed).

What Slack does to the text before we see it, and what we do about it:

* ``&``, ``<`` and ``>`` arrive as ``&amp;``, ``&lt;``, ``&gt;``; we unescape exactly those three, in
  one pass (so a typed ``&amp;lt;`` stays ``&lt;``). Other entities are left alone: Slack does not
  produce them, so they are what the user typed.
* With "Escape channels, users, and links" enabled on the slash command, links arrive as
  ``<https://x|x>`` or ``<mailto:a@b|a@b>``. We replace each with its label (what the user typed)
  or, without a label, its target. User, channel and group mentions (``<@U…>``, ``<#C…>``,
  ``<!subteam^S…>``, ``<!here>``) are refused: a command cannot mean a Slack mention.
* Control characters (other than tab and newline) and invisible formatting characters are refused,
  as is text over 4,000 characters (Slack's own limit) and an empty command.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import UsageError
from bot.output.filters import OutputFilter, parse_filter_text
from bot.policy import MAX_TIMEOUT_S

MAX_TEXT_CHARS = 4000
MAX_REASON_CHARS = 300
SLASH_SUBCOMMANDS = frozenset({"help", "list", "doctor", "run"})
# `filter` answers in a run's thread, so it is a mention's word, not the slash command's; still no service.
RESERVED_SERVICE_NAMES = SLASH_SUBCOMMANDS | {"filter"}

USAGE = (
    "Usage: `/ecs-exec [--task ID | --all-tasks] [--container NAME] [--timeout SECONDS] "
    "[--reason TEXT] SERVICE [--] COMMAND…`, `/ecs-exec list`, `/ecs-exec run RUNBOOK [SERVICE]`, "
    "`/ecs-exec doctor SERVICE` or `/ecs-exec help`."
)
EXAMPLE = 'Example: `/ecs-exec web --reason "INC-123 5xx spike" tail -n 100 /var/log/nginx/error.log`'

HELP_TEXT = f"""\
*Run a command in an ECS task*
`/ecs-exec SERVICE COMMAND…` runs COMMAND in one running task of SERVICE and posts its output.
Options go before the command: `--task ID` (a specific task), `--all-tasks` (every task, in turn), \
`--container NAME`, `--timeout SECONDS` (or `5m`), `--reason TEXT` (shown to approvers and in the audit log). \
Put `--` before a command that starts with `-`.
`/ecs-exec list` shows what you may run, and where (runbooks included). `/ecs-exec run RUNBOOK [SERVICE]` \
runs a runbook (a reviewed bundle of diagnostic steps) on the service's tasks and posts one report that flags \
the tasks that differ. `/ecs-exec doctor SERVICE` checks that ECS Exec works \
for a service and says how to fix what does not. `/ecs-exec` alone opens a form that builds the command.
In a run's thread, `@ecs-exec filter [-F] [-i] [-v] [-c] [--head N | --tail N] PATTERN` (or the Filter button \
under the result) filters the run's kept output without running anything again.
Commands are checked against the policy: one command, or several joined by `|`; `;`, `&&`, `$(…)`, \
redirections and similar shell syntax are refused unless a rule allows them.
{EXAMPLE}"""

_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
# "…" so the short id the bot shows (`3f2a9c…e1`, bot.output.render.short_task_id) can be pasted back.
_TASK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:/._…-]{0,255}$")
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_TIMEOUT = re.compile(r"^([0-9]{1,6})([sm]?)$")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
# Slack "special formatting": <target> or <target|label>, where target has no < > |.
_MARKUP = re.compile(r"<([^<>|\s]+)(?:\|([^<>]*))?>")
_LINK_TARGET = re.compile(r"^(?:https?|ftp|mailto|tel):", re.IGNORECASE)  # what Slack auto-links
_QUOTES = {"'": "'", '"': '"', "\u201c": "\u201d"}  # Slack may turn "…" into “…” (in option values only)

Text = Annotated[str, Field(min_length=1)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExecRequest(_Request):
    service: Text
    command: Text  # the exact text that will run (after unescaping)
    task: str | None = None
    container: str | None = None
    all_tasks: bool = False
    timeout: int | None = None  # seconds, when the user asked for one
    reason: str | None = None


class HelpRequest(_Request):
    topic: str | None = None


class ListRequest(_Request):
    pass


class DoctorRequest(_Request):
    service: Text


class RunbookRequest(_Request):
    runbook: Text
    service: str | None = None  # optional when the runbook names one service


class FilterRequest(_Request):
    """``filter …`` in a run's thread: a follow-up on the thread's last kept output."""

    spec: OutputFilter


Request = ExecRequest | HelpRequest | ListRequest | DoctorRequest | RunbookRequest | FilterRequest


def _usage(message: str) -> UsageError:
    return UsageError(message, fix=f"{USAGE} {EXAMPLE}")


# -- Slack text → plain text -----------------------------------------------------------------------------


def unescape_slack(text: str) -> str:
    """Undo Slack's escaping of ``& < >`` in one pass (so ``&amp;lt;`` becomes ``&lt;``, not ``<``)."""
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def unwrap_slack_markup(text: str) -> str:
    """Replace ``<url|label>``/``<url>`` links with what the user typed; refuse mentions.

    Runs *before* ``unescape_slack``: in Slack text a raw ``<`` only ever opens markup (a typed ``<``
    arrives as ``&lt;``), so markup and literal brackets cannot be confused."""

    def replace(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target[0] in "@#!":
            kind = {"@": "a user mention", "#": "a channel link", "!": "a group or @here mention"}[target[0]]
            raise _usage(f"The command contains {kind} (`{match.group(0)}`), which cannot be part of a command.")
        if not _LINK_TARGET.match(target):
            return match.group(0)  # not Slack markup (only possible outside Slack, e.g. the CLI)
        return label if label else target

    return _MARKUP.sub(replace, text)


def _check_characters(text: str) -> None:
    for i, ch in enumerate(text):
        if ch in "\t\n" or " " <= ch <= "~":
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            name = unicodedata.name(ch, "control character")
            raise _usage(
                f"The text contains an invisible or control character (U+{ord(ch):04X} {name}) at "
                f"position {i + 1}; retype the command without it."
            )


# -- words at the start of the text ------------------------------------------------------------------


class _Word:
    __slots__ = ("value", "start", "end")

    def __init__(self, value: str, start: int, end: int) -> None:
        self.value, self.start, self.end = value, start, end


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n":
        i += 1
    return i


def _next_word(text: str, i: int) -> _Word | None:
    """The shell-like word at or after ``i`` (quotes group, ``\\`` escapes), or None at the end."""
    n = len(text)
    i = _skip_space(text, i)
    if i >= n:
        return None
    start = i
    value: list[str] = []
    while i < n and text[i] not in " \t\n":
        ch = text[i]
        if ch in _QUOTES:
            close = text.find(_QUOTES[ch], i + 1)
            if close < 0:
                raise _usage(f"A quote ({ch}) in the options is never closed.")
            value.append(text[i + 1 : close])
            i = close + 1
        elif ch == "\\" and i + 1 < n:
            value.append(text[i + 1])
            i += 2
        else:
            value.append(ch)
            i += 1
    return _Word("".join(value), start, i)


# -- the parser ------------------------------------------------------------------------------------------

_VALUE_OPTIONS = ("--task", "--container", "--timeout", "--reason")
_FLAG_OPTIONS = ("--all-tasks",)


def parse_command_text(text: str) -> Request:
    """Parse slash-command text as Slack sends it (see the module docstring)."""
    if len(text) > MAX_TEXT_CHARS:
        raise _usage(f"The text is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}.")
    text = unescape_slack(unwrap_slack_markup(text))
    _check_characters(text)

    first = _next_word(text, 0)
    if first is None:
        return HelpRequest()
    keyword = text[first.start : first.end].lower()
    if keyword in ("help", "-h", "--help"):
        topic = text[first.end :].strip()
        return HelpRequest(topic=topic or None)
    if keyword == "list":
        if _next_word(text, first.end) is not None:
            raise _usage("`list` takes no arguments.")
        return ListRequest()
    if keyword == "doctor":
        service = _next_word(text, first.end)
        if service is None:
            raise _usage("`doctor` needs a service, e.g. `/ecs-exec doctor web`.")
        if _next_word(text, service.end) is not None:
            raise _usage("`doctor` takes exactly one service.")
        return DoctorRequest(service=_service_name(service.value))
    if keyword == "run":
        return _parse_runbook(text, first.end)
    if keyword == "filter":
        return FilterRequest(spec=parse_filter_text(text[first.end :]))
    return _parse_exec(text)


def _parse_runbook(text: str, pos: int) -> RunbookRequest:
    words = []
    while (word := _next_word(text, pos)) is not None:
        words.append(word.value)
        pos = word.end
    if not words or len(words) > 2:
        raise _usage("`run` takes a runbook and, optionally, a service, e.g. `/ecs-exec run diagnose web`.")
    if not _SERVICE.match(words[0]):
        raise _usage(f"`{words[0][:60]}` is not a valid runbook name.")
    return RunbookRequest(runbook=words[0], service=_service_name(words[1]) if len(words) > 1 else None)


def _parse_exec(text: str) -> ExecRequest:
    options: dict[str, str | bool] = {}
    service: str | None = None
    options_done = False
    pos = 0
    command_start: int | None = None
    while (start := _skip_space(text, pos)) < len(text):
        if service is not None and (options_done or text[start] != "-"):
            # The command: never tokenized here, so its quoting reaches the policy untouched.
            command_start = start
            break
        word = _next_word(text, start)
        assert word is not None
        raw = text[word.start : word.end]
        pos = word.end
        if not options_done and raw == "--":
            options_done = True
        elif not options_done and raw.startswith("-") and raw != "-":
            pos = _take_option(text, word, options, after_service=service is not None)
        else:
            service = _service_name(word.value)
    if service is None:
        raise _usage("Name the service to run the command on.")
    if command_start is None:
        raise _usage(f"Say which command to run on `{service}`.")
    command = text[command_start:].rstrip(" \t\n")
    return _build(service, command, options)


def _take_option(text: str, word: _Word, options: dict[str, str | bool], *, after_service: bool) -> int:
    """Record the option in ``word`` (and its value, which may be the next word); return the new position."""
    raw = text[word.start : word.end]
    name, eq, inline = raw.partition("=")
    if name not in _VALUE_OPTIONS and name not in _FLAG_OPTIONS:
        close = difflib.get_close_matches(name, _VALUE_OPTIONS + _FLAG_OPTIONS, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        if after_service:
            hint += " If this is the command, put `--` before it."
        raise _usage(f"Unknown option `{name}`.{hint}")
    if name in options:
        raise _usage(f"`{name}` is given twice.")
    if name in _FLAG_OPTIONS:
        if eq:
            raise _usage(f"`{name}` takes no value.")
        options[name] = True
        return word.end
    if eq:
        # Take the value from the already quote-processed word: `--reason="a b"`.
        options[name] = word.value.partition("=")[2]
        return word.end
    value = _next_word(text, word.end)
    if value is None:
        raise _usage(f"`{name}` needs a value.")
    options[name] = value.value
    return value.end


def _service_name(value: str) -> str:
    if value.lower() in RESERVED_SERVICE_NAMES:
        raise _usage(f"`{value}` is a subcommand, not a service; use it as the first word.")
    if not _SERVICE.match(value):
        raise _usage(f"`{value[:60]}` is not a valid service name.")
    return value


def _build(service: str, command: str, options: dict[str, str | bool]) -> ExecRequest:
    task = options.get("--task")
    container = options.get("--container")
    reason = options.get("--reason")
    all_tasks = bool(options.get("--all-tasks", False))
    if isinstance(task, str) and not _TASK.match(task):
        raise _usage(f"`{task[:60]}` is not a task ID or ARN.")
    if isinstance(container, str) and not _CONTAINER.match(container):
        raise _usage(f"`{container[:60]}` is not a container name.")
    check_task_choice(task, all_tasks)
    if isinstance(reason, str):
        reason = reason.strip()
        if not reason:
            raise _usage("`--reason` is empty.")
        if len(reason) > MAX_REASON_CHARS:
            raise _usage(f"`--reason` is longer than {MAX_REASON_CHARS} characters.")
    timeout = parse_timeout(options["--timeout"]) if "--timeout" in options else None
    return ExecRequest(
        service=service,
        command=command,
        task=task if isinstance(task, str) else None,
        container=container if isinstance(container, str) else None,
        all_tasks=all_tasks,
        timeout=timeout,
        reason=reason if isinstance(reason, str) else None,
    )


def check_task_choice(task: object, all_tasks: bool) -> None:
    """One task or every task, never both (Slack and the CLI share the rule and its sentence)."""
    if task is not None and all_tasks:
        raise _usage("Use either `--task` or `--all-tasks`, not both.")


def parse_timeout(value: str | bool) -> int:
    """``90``, ``90s`` or ``5m`` → seconds within 1..MAX_TIMEOUT_S (Slack's `--timeout` and the CLI's)."""
    match = _TIMEOUT.match(str(value))
    if match is None:
        raise _usage(f"`--timeout {value}` is not a number of seconds (e.g. `90`, `90s` or `5m`).")
    seconds = int(match.group(1)) * (60 if match.group(2) == "m" else 1)
    if not 1 <= seconds <= MAX_TIMEOUT_S:
        raise _usage(f"`--timeout` must be between 1 and {MAX_TIMEOUT_S} seconds.")
    return seconds
