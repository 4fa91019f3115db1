"""``ecs-exec-bot demo --interactive``: type ``/ecs-exec …`` lines as a chosen user, click buttons by name.

    /ecs-exec web tail -n 20 /var/log/nginx/error.log   (the "/ecs-exec" is optional)
    @ecs-exec web tail -n 20 /var/log/nginx/error.log   a mention, in the demo's incident thread
    @ecs-exec filter -c ' 502 '                         a follow-up on the thread's last output
    :as bob | :as U0BOB                                 act as another user
    :approve [id] | :deny [id] | :cancel [id]           click a button (newest request without an id)
    :requests                                           the approval requests that still have buttons
    :help                                               the keys
    :quit                                               stop (so do Ctrl-D and Ctrl-C)

`parse_line` is pure; `run` reads lines on a daemon thread (a blocked read must never keep the process
alive after Ctrl-C) and plays each one against the running demo.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TextIO

from bot.errors import BotError
from standins.demo.channel import Event, UserAction
from standins.demo.printer import Printer
from standins.demo.session import APPROVE, CANCEL, DENY, USERS, DemoSession

HELP = (
    "Type /ecs-exec lines as the current user (the \"/ecs-exec\" is optional), e.g.\n"
    "  /ecs-exec web tail -n 20 /var/log/nginx/error.log\n"
    "  @ecs-exec web tail -n 20 /var/log/nginx/error.log   (a mention, in the incident's thread)\n"
    "  @ecs-exec filter -c ' 502 '   (a follow-up on the thread's last output, nothing runs again)\n"
    "  :as bob  (or :as U0BOB)        act as another user\n"
    "  :approve [id]  :deny [id]  :cancel [id]   click a button (newest request when no id is given)\n"
    "  :requests                      list the approval requests that still have buttons\n"
    "  :help                          this text\n"
    "  :quit                          stop (Ctrl-D and Ctrl-C too)"
)
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_CLICKS = {"approve": APPROVE, "deny": DENY, "cancel": CANCEL}


@dataclass(frozen=True)
class Slash:
    text: str


@dataclass(frozen=True)
class Mention:
    text: str  # what follows "@ecs-exec"


@dataclass(frozen=True)
class SwitchUser:
    user_id: str


@dataclass(frozen=True)
class ClickButton:
    action_id: str
    request_id: str | None


@dataclass(frozen=True)
class ListRequests:
    pass


@dataclass(frozen=True)
class ShowHelp:
    pass


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class Nothing:
    pass


@dataclass(frozen=True)
class Invalid:
    message: str


Line = Slash | Mention | SwitchUser | ClickButton | ListRequests | ShowHelp | Quit | Nothing | Invalid


def resolve_user(word: str, users: Mapping[str, str] = USERS) -> str | None:
    """``bob``, ``@bob`` or a Slack user ID (any well-formed one: strangers are refused by the policy)."""
    name = word.lstrip("@")
    for user_id, known in users.items():
        if name.lower() == known.lower():
            return user_id
    return name if _USER_ID.match(name) else None


def parse_line(line: str, users: Mapping[str, str] = USERS) -> Line:
    text = line.strip()
    if not text:
        return Nothing()
    if text.startswith(":"):
        word, _, rest = text[1:].partition(" ")
        word, rest = word.lower(), rest.strip()
        if word in ("quit", "q", "exit"):
            return Quit()
        if word in ("help", "h", "?"):
            return ShowHelp()
        if word in ("requests", "r"):
            return ListRequests()
        if word == "as":
            user_id = resolve_user(rest, users) if rest else None
            if user_id is None:
                known = ", ".join(users.values())
                return Invalid(f"Unknown user {rest!r}: use one of {known}, or a Slack user ID like U0CAROL.")
            return SwitchUser(user_id)
        if word in _CLICKS:
            if " " in rest:
                return Invalid(f"`:{word}` takes at most one request id.")
            return ClickButton(_CLICKS[word], rest or None)
        return Invalid(f"Unknown key `:{word}`; type :help.")
    if text.startswith("@"):
        name, _, rest = text.partition(" ")
        if name.lower() not in ("@ecs-exec", "@ecs_exec"):
            return Invalid(f"Only @ecs-exec is in this channel, not {name}.")
        return Mention(rest.strip() or "help")
    if text.startswith("/"):
        command, _, rest = text.partition(" ")
        if command != "/ecs-exec":
            return Invalid(f"Only /ecs-exec is installed in this workspace, not {command}.")
        text = rest.strip()
        if not text:
            return Slash("help")
    return Slash(text)


async def _lines(stream: TextIO) -> AsyncIterator[str]:
    """Lines from ``stream`` read on a daemon thread; ends at EOF."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        try:
            for line in iter(stream.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except RuntimeError:  # the loop is already closed: nobody is waiting any more
                pass

    threading.Thread(target=reader, name="demo-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


async def run(session: DemoSession, printer: Printer, stdin: TextIO, *, user_id: str = "U0ALICE") -> None:
    style = printer.style
    printer.lines([style.ascii(f"You are {session.names.user(user_id)} in #incident."), HELP, ""])
    prompt = getattr(stdin, "isatty", lambda: False)()
    current = user_id
    thread: str | None = None  # the incident thread, started by the first mention

    def show_prompt() -> None:
        if prompt:
            printer.stream.write(style.ascii(f"{session.names.user(current)} › "))
            printer.stream.flush()

    show_prompt()
    async for raw in _lines(stdin):
        parsed = parse_line(raw)
        try:
            if isinstance(parsed, Quit):
                break
            if isinstance(parsed, Slash):
                events = await session.command(current, parsed.text)
                # A terminal already shows what was typed after the prompt; a pipe shows nothing.
                printer.events(events[1:] if prompt else events, session.names)
            elif isinstance(parsed, Mention):
                opened: list[Event] = []
                if thread is None:
                    thread, opened = session.start_thread(current, "an incident thread for the demo's mentions")
                events = opened + await session.mention(current, parsed.text, thread)
                # A terminal already shows what was typed after the prompt; a pipe shows nothing.
                printer.events([e for e in events if not (prompt and isinstance(e, UserAction))], session.names)
            elif isinstance(parsed, ClickButton):
                printer.events(await session.click(current, parsed.action_id, parsed.request_id), session.names)
            elif isinstance(parsed, SwitchUser):
                current = parsed.user_id
                printer.note(f"You are now {session.names.user(current)}.")
            elif isinstance(parsed, ListRequests):
                _list_requests(session, printer)
            elif isinstance(parsed, ShowHelp):
                printer.lines([HELP])
            elif isinstance(parsed, Invalid):
                printer.note(parsed.message)
        except BotError as exc:
            printer.note(exc.user_text())
        show_prompt()
    if prompt:
        printer.lines([""])


def _list_requests(session: DemoSession, printer: Printer) -> None:
    requests = session.open_requests()
    if not requests:
        printer.note("No approval request has buttons right now.")
        return
    for request in requests:
        keys = " ".join(f":{name} {request.request_id}" for name, a in _CLICKS.items() if a in request.actions)
        printer.note(f"request {request.request_id}: {keys}")
