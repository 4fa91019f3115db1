"""The command builder (``/ecs-exec`` with no arguments, App Home's "Build a command"): what the modal
offers at each step, and the command text its submission becomes. Pure.

Offering is a guide, never a decision: the submission is typed text like any other request and takes the
one path (`handlers.commands.handle_request`: parse, policy, limits, audit, approvals). The services and
patterns offered come from the policy (`bot.policy.services_offered`, `patterns_offered`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.output.render import MODAL_OPTIONS, BuilderView
from bot.policy import CHANNEL_ID, patterns_offered, services_offered

if TYPE_CHECKING:
    from bot.config import BotConfig

_TS = re.compile(r"^[0-9]{1,12}\.[0-9]{1,9}$")


@dataclass(frozen=True)
class BuilderState:
    """Where the builder stands: chosen so far, from the view's state (input, so checked by the caller
    against what is offered; anything not offered any more is dropped)."""

    channel: str | None  # where the command runs; None until chosen (opened from Home)
    from_home: bool = False  # the channel is picked in the modal
    service: str | None = None
    pattern: str | None = None  # the offered pattern's option value (its index)


def valid_channel(value: object) -> str | None:
    return value if isinstance(value, str) and CHANNEL_ID.match(value) else None


def valid_ts(value: object) -> str | None:
    return value if isinstance(value, str) and _TS.match(value) else None


def builder_view(
    config: BotConfig, user: str, groups: frozenset[str] | None, state: BuilderState, private_metadata: str
) -> BuilderView:
    """The modal for ``state``. ``groups`` None (Slack was slow to say): every catalogue service is
    offered and no patterns; the submission decides as always."""
    catalogue = [(alias, config.environment_of(svc)) for alias, svc in sorted(config.services.items())]
    env_of = dict(catalogue)
    if groups is None:
        aliases = [alias for alias, _ in catalogue]
    else:
        aliases = services_offered(config.policy, user, groups, state.channel, catalogue)
    aliases = aliases[:MODAL_OPTIONS]
    service = state.service if state.service in aliases else None
    if service is None and len(aliases) == 1:
        service = aliases[0]  # one choice: made for them
    patterns: list[tuple[str, str]] = []
    prefill, pattern = "", None
    if service is not None and groups is not None:
        offered = patterns_offered(config.policy, user, groups, state.channel, service, env_of[service])
        for n, p in enumerate(offered[:MODAL_OPTIONS]):
            label = p.text.replace("`", "") + (" · approval" if p.needs_approval else "")
            patterns.append((str(n), label))
            if state.pattern == str(n) and service == state.service:  # a pattern of the service chosen
                pattern, prefill = str(n), p.prefix
    if not aliases:
        where = "from this channel" if state.channel and not state.from_home else "anywhere"
        if state.from_home and state.channel:
            where = "from that channel"
        note = f"No policy rule lets you run commands {where}. `/ecs-exec list` shows what you may run."
    else:
        note = None
    return BuilderView(
        private_metadata=private_metadata,
        channel_picker=state.from_home,
        channel=state.channel,
        services=tuple((alias, f"{alias} ({env_of[alias]})") for alias in aliases),
        service=service,
        patterns=tuple(patterns),
        pattern=pattern,
        prefill=prefill,
        note=note,
    )


def command_text(service: str, command: str, reason: str | None = None) -> str:
    """The submission as if typed after ``/ecs-exec``: the same parser, so the same rules and usage errors."""
    why = f"--reason {shlex.quote(reason.strip())} " if reason and reason.strip() else ""
    return f"{why}{service} {command.strip()}"
