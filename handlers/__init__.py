"""The Slack adapter: the only package that knows Slack payloads, in the shape of Bolt's starter template.

- listeners: ``commands`` (the slash command), ``mentions`` (``@ecs-exec …`` in a channel or thread, the
  same path as the slash command), ``shortcuts`` (the "Run on ECS…" message shortcut and its modal, the
  same path again), ``actions`` (Approve / Deny / Cancel buttons), ``builder`` (the command builder
  modal: ``/ecs-exec`` with no arguments, the same path again), ``home`` (App Home), ``followups`` (the
  Filter button, its form and ``@ecs-exec filter …`` in a run's thread: filters on the run's kept
  output) — each turns a payload into one call to the core (`bot.runs`) and a reply;
- ``live``: live progress of running commands within Slack's ``chat.update`` rate limit;
- ``delivery``: posts, updates and uploads from the core's run events (`bot.runs.executor.RunSink`);
- ``replies``: every message, built through `bot.output.render`;
- ``app`` (the Bolt app and the composition root), ``server`` (HTTP / Socket Mode listener, drain),
  ``slack_calls`` (Web API calls with one error sentence each), ``usergroups`` (cached memberships).

`register(app, services, live)` wires every listener; ``live`` (one per process) is shared by every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from bot.services import Services
    from handlers.live import LiveUpdates


def register(app: AsyncApp, services: Services, live: LiveUpdates | None = None) -> None:
    from handlers import actions, builder, commands, followups, home, mentions, shortcuts

    commands.register(app, services, live)
    mentions.register(app, services, live)
    shortcuts.register(app, services, live)
    actions.register(app, services, live)
    builder.register(app, services, live)
    home.register(app, services, live)
    followups.register(app, services)
