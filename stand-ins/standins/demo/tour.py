"""The scripted tour: what a newcomer should see in their first minutes, as data, and the loop playing it.

Each `Step` is a heading, a note and the actions people take (typing a slash command, clicking a
button); the bot's answers are whatever the real bot does. Steps use both demo users so the channel
reads like an incident: @alice and @bob are on call in #incident.
"""

from __future__ import annotations

from dataclasses import dataclass

from standins.demo.printer import Printer
from standins.demo.session import APPROVE, DENY, DemoSession

ALICE, BOB = "U0ALICE", "U0BOB"


@dataclass(frozen=True)
class Command:
    user_id: str
    text: str  # what follows "/ecs-exec "


@dataclass(frozen=True)
class Click:
    user_id: str
    action_id: str  # on the newest message that has this button


@dataclass(frozen=True)
class StartThread:
    user_id: str
    text: str  # a message in #incident; the actions after it happen in its thread


@dataclass(frozen=True)
class Mention:
    user_id: str
    text: str  # what follows "@ecs-exec ", in the thread


@dataclass(frozen=True)
class WatchThenCancel:
    user_id: str
    text: str  # what follows "@ecs-exec ", in the thread
    cancel_by: str
    after_s: float
    traffic: str | None = None  # a log the task keeps appending to meanwhile


@dataclass(frozen=True)
class FilterForm:
    user_id: str
    pattern: str
    show: str = "head"  # head | tail | count
    lines: int | None = None


Action = Command | Click | StartThread | Mention | WatchThenCancel | FilterForm


@dataclass(frozen=True)
class Step:
    title: str
    note: str | None
    actions: tuple[Action, ...]


TOUR: tuple[Step, ...] = (
    Step(
        "An allowed command and its output",
        "Paths are the container's: /var/log/nginx/access.log is the task's log (a sandbox copy), "
        "never this machine's.",
        (Command(ALICE, "web tail -n 5 /var/log/nginx/access.log"),),
    ),
    Step(
        "grep and a pipe",
        "A pipe between allowed commands is fine: the policy checks every command in it.",
        (Command(BOB, "web grep ' 504 ' /var/log/nginx/access.log | cut -d' ' -f7 | sort | uniq -c"),),
    ),
    Step(
        "A hostile command is refused, with the reason",
        "Refusals go to the requester only; nothing ran.",
        (Command(ALICE, "web cat x; rm -rf /"),),
    ),
    Step(
        "Secrets are redacted before anything leaves the bot",
        "The file holds fake credentials; the channel sees [redacted:<kind>].",
        (Command(ALICE, "api cat /etc/app/config.env"),),
    ),
    Step(
        "Long output: head and tail in the message, the full output as a file in the thread",
        None,
        (Command(BOB, "worker cat /var/log/worker/jobs.log"),),
    ),
    Step(
        "Approval by a second person: @alice asks, @bob approves, then it runs",
        "Reading production configuration needs approval (rule prod-config).",
        (
            Command(ALICE, 'web --reason "INC-4711 upstream timeouts" cat /etc/nginx/nginx.conf'),
            Click(BOB, APPROVE),
        ),
    ),
    Step(
        "Nobody approves their own request",
        "@alice asks again and clicks Approve herself: refused. @bob then denies it.",
        (
            Command(ALICE, "web cat /etc/app/config.env"),
            Click(ALICE, APPROVE),
            Click(BOB, DENY),
        ),
    ),
    Step(
        "In the incident's thread: @ecs-exec",
        "Slack sends no slash commands from threads; a mention takes the same path, and every answer stays "
        "in the thread.",
        (
            StartThread(BOB, "web is throwing 502s since 10:02, looking"),
            Mention(ALICE, "web tail -n 3 /var/log/nginx/error.log"),
        ),
    ),
    Step(
        "Live progress while it runs, and Cancel",
        "The message shows time, lines and the last lines so far, at most every 2 s; the result replaces it.",
        (WatchThenCancel(BOB, "web tail -f -n 2 /var/log/nginx/access.log", cancel_by=BOB, after_s=4.5,
                         traffic="/var/log/nginx/access.log"),),
    ),
    Step(
        "Follow-ups: filter the output without running the command again",
        "The output is kept (redacted) for 24 h: the Filter button, or a reply in the thread.",
        (
            Mention(ALICE, "web cat /var/log/nginx/access.log"),
            FilterForm(BOB, " 50[234] ", show="count"),
            Mention(ALICE, "filter --tail 3 ' 502 '"),
        ),
    ),
)


async def play(session: DemoSession, printer: Printer, steps: tuple[Step, ...] = TOUR) -> None:
    thread: str | None = None
    for number, step in enumerate(steps, 1):
        printer.heading(number, step.title, step.note)
        for action in step.actions:
            if isinstance(action, StartThread):
                thread, events = session.start_thread(action.user_id, action.text)
            elif isinstance(action, Command):
                events = await session.command(action.user_id, action.text)
            elif isinstance(action, Click):
                events = await session.click(action.user_id, action.action_id)
            elif isinstance(action, FilterForm):
                events = await session.filter_form(action.user_id, action.pattern, show=action.show,
                                                   lines=action.lines)
            else:
                if thread is None:
                    raise ValueError("a tour mentions the bot before any thread was started")
                if isinstance(action, Mention):
                    events = await session.mention(action.user_id, action.text, thread)
                else:
                    events = await session.mention_and_cancel(
                        action.user_id, action.text, thread, cancel_by=action.cancel_by, after_s=action.after_s,
                        traffic=action.traffic,
                    )
            printer.events(events, session.names)
