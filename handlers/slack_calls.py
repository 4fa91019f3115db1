"""The Slack calls the handlers make, with Slack's errors turned into sentences a user can act on.

429s are retried by the client's retry handler (see `handlers.app.build_web_client`); what reaches us here
is a final answer. ``not_in_channel`` / ``channel_not_found`` are the common set-up mistake (private
channel, bot never invited) and get their own error with the fix; anything else is logged with the
method and shown as one sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

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
    """``chat.postMessage`` → the message ts."""
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
