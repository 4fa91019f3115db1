"""Writes the demo's transcript to a stream: the intro, step headings, channel events and the outro.

The wording of the intro and outro is built by pure functions (`intro_lines`, `outro_lines`) so tests
can check it without running anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from standins.demo.channel import Event
from standins.demo.transcript import BOLD, DIM, Names, Style, event_lines, heading_lines

SERVE_HINT = (
    "To run the real bot: set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode) "
    "and ECS_EXEC_BOT_CONFIG, then run `ecs-exec-bot serve` (see docs/deploy.md)."
)


@dataclass
class Printer:
    stream: TextIO
    style: Style

    def lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.stream.write(line + "\n")
        self.stream.flush()

    def heading(self, number: int | None, title: str, note: str | None = None) -> None:
        self.lines(heading_lines(number, title, note, self.style))

    def events(self, events: Iterable[Event], names: Names) -> None:
        for event in events:
            self.lines(event_lines(event, names, self.style))

    def note(self, text: str) -> None:
        self.lines([self.style.paint(self.style.ascii(text), DIM)])


def intro_lines(
    style: Style,
    *,
    bot_url: str,
    stand_in_urls: Mapping[str, str],
    clusters: Mapping[str, Mapping[str, Any]],
    catalogue: Mapping[str, str],
    config_path: str,
    users: Mapping[str, str],
    channel: str,
) -> list[str]:
    """Where everything listens (127.0.0.1 only), what the local cluster holds, who is who."""
    p = style.paint
    rows = [("the bot (Bolt, HTTP)", f"{bot_url}/slack/events"), *stand_in_urls.items()]
    width = max(len(name) for name, _ in rows)
    lines = [
        p("ecs-exec-bot demo", BOLD) + style.ascii(" — offline: the real bot with local stand-ins for ECS, "
                                                    "the SSM agent and Slack. No AWS or Slack account is used."),
        "Everything listens on 127.0.0.1 only:",
        *(f"  {name.ljust(width)}  {url}" for name, url in rows),
    ]
    for cluster, services in clusters.items():
        parts = [
            f"{name} ({len(svc['tasks'])} task{'s' if len(svc['tasks']) != 1 else ''}: {', '.join(svc['containers'])})"
            for name, svc in services.items()
        ]
        lines.append(f"ECS cluster {p(cluster, BOLD)}: " + "; ".join(parts))
    lines.append(
        "Services as typed in Slack: "
        + ", ".join(f"{alias} = {where}" for alias, where in catalogue.items())
        + f"  (catalogue and policy: {config_path})"
    )
    lines.append(
        "Commands run in a temporary copy of stand-ins/standins/data/demo/task, the tasks' filesystem, at "
        "the container's paths: /var/log/nginx/access.log is the task's file, never this machine's."
    )
    people = ", ".join(f"@{name} ({uid})" for uid, name in users.items())
    lines.append(f"People: {people}, in #{channel}.")
    return [style.ascii(line) for line in lines]


def outro_lines(style: Style, *, elapsed_s: float, interactive: bool) -> list[str]:
    done = "Interactive session over" if interactive else "Tour over"
    lines = [
        "",
        style.paint(f"{done} in {elapsed_s:.1f} s; every stand-in is stopped and the temp dir removed.", BOLD),
    ]
    if not interactive:
        lines.append("Try your own commands: `ecs-exec-bot demo --interactive`.")
    lines.append(SERVE_HINT)
    return [style.ascii(line) for line in lines]
