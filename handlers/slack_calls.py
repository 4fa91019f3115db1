"""The Slack calls the handlers make, with Slack's errors turned into sentences a user can act on.

429s are retried by the client's retry handler (see `handlers.app.build_web_client`); what reaches us here
is a final answer. ``not_in_channel`` / ``channel_not_found`` are the common set-up mistake (private
channel, bot never invited) and get their own error with the fix; anything else is logged with the
method and shown as one sentence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import SlackError

log = logging.getLogger("ecs_exec_bot.slack")

_INVITE_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


class NotInChannel(SlackError):
    """The bot cannot post in the channel the command came from."""

    def __init__(self, error: str) -> None:
        super().__init__(
            f"I can't post in this channel ({error}), so I did not run anything.",
            fix="Invite @ecs-exec to this channel: /invite @ecs-exec",
        )
        self.error = error


def slack_failure(method: str, exc: SlackApiError) -> SlackError:
    error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    if error in _INVITE_ERRORS:
        return NotInChannel(error)
    log.error("Slack %s failed: %s", method, error)
    return SlackError(
        f"Slack refused {method} ({error}).", fix="Try again; if it persists, tell the bot's operators."
    )


async def post_message(
    client: AsyncWebClient,
    channel: str,
    text: str,
    blocks: Sequence[dict[str, Any]],
    *,
    thread_ts: str | None = None,
) -> str:
    """``chat.postMessage`` → the message ts; with ``thread_ts``, a reply in that thread."""
    try:
        resp = await client.chat_postMessage(
            channel=channel,
            text=text,
            blocks=list(blocks),
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
    except SlackApiError as exc:
        raise slack_failure("chat.postMessage", exc) from exc
    return str(resp["ts"])


async def update_message(
    client: AsyncWebClient, channel: str, ts: str, text: str, blocks: Sequence[dict[str, Any]]
) -> None:
    try:
        await client.chat_update(channel=channel, ts=ts, text=text, blocks=list(blocks))
    except SlackApiError as exc:
        raise slack_failure("chat.update", exc) from exc


# A trigger_id is valid for 3 s, and the listener that opens a view answers Slack only when it returns.
VIEWS_OPEN_S = 2.5


async def open_view(client: AsyncWebClient, trigger_id: str, view: dict[str, Any]) -> None:
    """``views.open`` within the trigger's life; past it, or refused, one `SlackError` sentence."""
    try:
        await asyncio.wait_for(client.views_open(trigger_id=trigger_id, view=view), VIEWS_OPEN_S)
    except TimeoutError:
        raise SlackError("Slack did not open the form in time.", fix="Try again.") from None
    except SlackApiError as exc:
        raise SlackError(f"Slack did not open the form ({exc.response.get('error')}).", fix="Try again.") from exc


async def upload_text_file(
    client: AsyncWebClient, channel: str, thread_ts: str, filename: str, title: str, content: bytes
) -> None:
    """``files_upload_v2`` into the message's thread (getUploadURLExternal → POST → completeUploadExternal)."""
    try:
        await client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            filename=filename,
            title=title,
            content=content,
            snippet_type="text",
        )
    except SlackApiError as exc:
        raise slack_failure("files.upload", exc) from exc


class Responder:
    """Posts to a payload's ``response_url`` (ephemeral by default; works where the bot is not a member).

    Slack allows 5 posts per response_url within 30 minutes; handlers budget their messages accordingly.
    """

    def __init__(self, response_url: str | None) -> None:
        self._url = response_url

    async def __call__(
        self,
        text: str,
        blocks: Sequence[dict[str, Any]] | None = None,
        *,
        in_channel: bool = False,
        replace_original: bool | None = None,
    ) -> bool:
        if not self._url:
            log.warning("no response_url; dropping message: %s", text[:200])
            return False
        hook = AsyncWebhookClient(
            self._url,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
                AsyncRateLimitErrorRetryHandler(),
            ],
        )
        try:
            resp = await hook.send(
                text=text,
                blocks=list(blocks) if blocks else None,
                response_type="in_channel" if in_channel else "ephemeral",
                replace_original=replace_original,
            )
        except (OSError, TimeoutError) as exc:
            log.error("response_url post failed: %r", exc)
            return False
        if resp.status_code != 200:
            # Expired (30 min) or used up (5 posts): nothing else can reach an ephemeral message.
            log.error("response_url answered %s: %s", resp.status_code, resp.body[:200])
            return False
        return True


class Replier(Protocol):
    """Answers the requester alone (ephemeral); True when the answer was delivered."""

    async def __call__(self, text: str, blocks: Sequence[dict[str, Any]] | None = None) -> bool: ...


# chat.postEphemeral cannot reach these users (Slack Connect guests outside the channel, a user who left):
# the answer then goes in the thread, naming the user, so the request is never left unanswered.
_NO_EPHEMERAL = frozenset({"user_not_in_channel", "cannot_dm_bot", "user_not_found"})


class ThreadEphemeral:
    """The requester-only channel of a request made in a message (an ``@ecs-exec`` mention), which has no
    ``response_url``: ``chat.postEphemeral`` to the user, in the request's thread."""

    def __init__(self, client: AsyncWebClient, channel: str, user: str, thread_ts: str | None) -> None:
        self._client = client
        self._channel = channel
        self._user = user
        self._thread_ts = thread_ts

    async def __call__(self, text: str, blocks: Sequence[dict[str, Any]] | None = None) -> bool:
        try:
            await self._client.chat_postEphemeral(
                channel=self._channel, user=self._user, text=text,
                blocks=list(blocks) if blocks else None, thread_ts=self._thread_ts,
            )
            return True
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error not in _NO_EPHEMERAL:
                log.error("chat.postEphemeral failed (%s); dropping message: %s", error, text[:200])
                return False
        try:
            mention = [{"type": "context", "elements": [{"type": "mrkdwn", "text": f"<@{self._user}>"}]}]
            await post_message(
                self._client, self._channel, f"<@{self._user}> {text}", [*mention, *(blocks or [])],
                thread_ts=self._thread_ts,
            )
            return True
        except SlackError as exc:
            log.error("threaded reply failed: %s; dropping message: %s", exc.user_text(), text[:200])
            return False


def requester_replier(
    client: AsyncWebClient, *, response_url: str | None, channel: str, user: str, thread_ts: str | None
) -> Replier:
    """A slash command's answers go through its ``response_url``; a mention's (which has none) are
    posted ephemerally in its thread."""
    if response_url:
        return Responder(response_url)
    return ThreadEphemeral(client, channel, user, thread_ts)
