"""Slack listeners: the only code besides `handlers/app.py` that knows Slack payloads.

`register(app, services)` wires every listener; each module has one kind of payload (``commands``: the
slash command; ``actions``: approval / cancel buttons, when present).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from handlers.app import Services


def register(app: AsyncApp, services: Services) -> None:
    from handlers import cancel, commands

    commands.register(app, services)
    cancel.register(app, services)  # Cancel on a plain run; approval buttons fall through to actions
    # Buttons (approve / deny / cancel) live in handlers/actions.py, owned by the approvals work; it is
    # optional so this package works before and without it.
    try:
        actions = importlib.import_module("handlers.actions")
    except ModuleNotFoundError as exc:
        if exc.name != "handlers.actions":
            raise
    else:
        actions.register(app, services)
