"""``@ecs-exec web tail -n 100 /var/log/nginx/error.log`` in a channel or a thread (the ``app_mention``
event): the same request as the slash command, answered in the thread.

Slack does not deliver slash commands from threads, and incidents are worked in threads. A mention takes
the slash command's path (`handlers.commands.handle_request`: the same parsing, policy, limits, audit and
exactly-once claim); only the edges differ:

- the claim key is the event's ``event_id``: the Events API retries a delivery it thinks failed
  (``X-Slack-Retry-Num``, the same ``event_id``), and a retry may arrive while the first is still being
  handled, so it must never run twice;
- results, approval cards and files go to the thread (the mention's ``thread_ts``, or its own ``ts``,
  which starts a thread under it);
- what the slash command answers ephemerally (refusals, usage, help, list, doctor) is posted with
  ``chat.postEphemeral`` to the user in that thread; "running…" and "needs approval" are not, since the
  thread shows the run's own message at once.

The event is acked (HTTP 200) when the listener returns; like the slash command, it does only bounded
work before that and runs the rest in a tracked job.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from bot.runs.jobs import BotRestarting
from handlers.commands import Answer, CommandRequest, Message, handle_request, new_request_id
from handlers.slack_calls import Replier

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from slack_bolt.app.async_app import AsyncApp

    from bot.services import Services
    from handlers.live import LiveUpdates

log = logging.getLogger("ecs_exec_bot.handlers")

# <@U123> or <@U123|name>: how a mention of the bot arrives in the event's text.
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


class Mention(BaseModel):
    """The fields of an ``app_mention`` event_callback we use."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str
    user: str
    channel: str
    text: str
    ts: str
    thread_ts: str | None = None
    bot_id: str | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Mention:
        event = body.get("event") or {}
        return cls(event_id=body.get("event_id") or "", **event)

    @property
    def thread(self) -> str:
        """The thread to answer in: the one the mention was made in, or one started under it."""
        return self.thread_ts or self.ts


def command_text(text: str, bot_user_id: str | None) -> str:
    """What follows the bot's mention: ``"<@U0BOT> web echo hi"`` → ``"web echo hi"``. Words before the
    mention ("hey @ecs-exec …") are not part of the command."""
    for match in _MENTION.finditer(text):
        if bot_user_id is None or match.group(1) == bot_user_id:
            return text[match.end() :].strip()
    return text.strip()


def register(app: AsyncApp, services: Services, live: LiveUpdates | None = None) -> None:
    @app.event("app_mention")
    async def _app_mention(ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()  # sent when this returns: only bounded work below (see handle_request)
        await handle_mention(services, client, body, live)


async def handle_mention(
    services: Services, client: AsyncWebClient, body: dict[str, Any], live: LiveUpdates | None = None
) -> None:
    request_id = new_request_id()
    try:
        mention = Mention.from_body(body)
    except (ValidationError, TypeError):
        log.warning("malformed app_mention event ignored (request %s)", request_id)
        return
    if mention.bot_id or not mention.event_id:
        return  # another bot's message (policy keys on people), or not an Events API delivery
    req = CommandRequest(
        user=mention.user, channel=mention.channel, text=command_text(mention.text, services.bot_user_id),
        dedupe_key=f"slack-event:{mention.event_id}", thread_ts=mention.thread,
    )
    answer = thread_answer(services, req.replier(client), request_id)
    await handle_request(services, client, req, answer, request_id=request_id, live=live)


def thread_answer(services: Services, replier: Replier, request_id: str) -> Answer:
    """The first answer to a request made in a message (a mention, the shortcut's modal): posted to the
    requester alone from a job after the ack, which carries no message; notices are not posted at all (the
    run's own message, or the card, appears in the thread at once; "already received" is a retry)."""

    async def answer(message: Message, *, notice: bool) -> None:
        if notice:
            return

        async def post(job: object) -> None:
            await replier(*message)

        try:
            services.jobs.start(f"answer-{request_id}", post)
        except BotRestarting:
            log.warning("request %s not answered: the bot is restarting", request_id)

    return answer
