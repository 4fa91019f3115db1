"""What a user may run, and where: `/ecs-exec list`, the App Home tab and `ecs-exec-bot policy list`.

Its own module (not ``bot.runs.intake``) so that `policy list` does not import the run machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.policy import allowed_summary
from bot.runbooks import runbook_summary
from bot.service_ref import resolve_service_ref

if TYPE_CHECKING:
    from bot.config import BotConfig


def allowed_summary_with_runbooks(
    config: BotConfig, user: str, groups: frozenset[str], channel: str, *, full: bool = False
) -> list[str]:
    """`/ecs-exec list`: the rules that include the user, then the runbooks they may run here (``full``:
    every pattern, for the command line)."""
    refs = {alias: resolve_service_ref(config, alias) for book in config.runbooks.values() for alias in book.services}
    return [
        *allowed_summary(config.policy, user, groups, channel, full=full),
        *runbook_summary(config.runbooks, config.policy, user=user, groups=groups, channel=channel, refs=refs),
    ]
