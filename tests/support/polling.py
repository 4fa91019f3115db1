"""Polling for something the bot does in the background (a job step, an audit write, a process ending)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], within: float = 20.0, *, what: str = "condition") -> None:
    """Return once ``condition()`` is true; fail the test if it is not within ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, f"{what} not reached within {within:g} s"
        await asyncio.sleep(0.02)
