"""The Slack adapter: the only package that knows Slack payloads, in the shape of Bolt's starter template.

- listeners: ``commands`` (the slash command), ``actions`` (Approve / Deny / Cancel buttons) — each turns a
  payload into one call to the core (`bot.runs`) and a reply;
- ``delivery``: posts, updates and uploads from the core's run events (`bot.runs.executor.RunSink`);
- ``replies``: every message, built through `bot.output.render`;
- ``app`` (the Bolt app and the composition root), ``server`` (HTTP / Socket Mode listener, drain),
  ``slack_calls`` (Web API calls with one error sentence each), ``usergroups`` (cached memberships).

`register(app, services)` wires every listener.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from bot.services import Services


def register(app: AsyncApp, services: Services) -> None:
    from handlers import actions, commands

    commands.register(app, services)
    actions.register(app, services)
