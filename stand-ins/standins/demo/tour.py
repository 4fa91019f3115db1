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


Action = Command | Click


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
)


async def play(session: DemoSession, printer: Printer, steps: tuple[Step, ...] = TOUR) -> None:
    for number, step in enumerate(steps, 1):
        printer.heading(number, step.title, step.note)
        for action in step.actions:
            if isinstance(action, Command):
                events = await session.command(action.user_id, action.text)
            else:
                events = await session.click(action.user_id, action.action_id)
            printer.events(events, session.names)
