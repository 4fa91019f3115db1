"""Signed Slack requests over real HTTP, as Slack sends them (form body, v0 HMAC signature).

Shared by the Slack tests and the approvals tests: ``SlackSender(url, secret).command(...)`` posts a
slash command to the app's ``/slack/events`` and returns the HTTP status and body (the ack);
``.event(event_callback_body(...))`` posts an Events API delivery (JSON), with ``X-Slack-Retry-Num``
when it stands for one of Slack's retries.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

_counter = itertools.count(1)


@dataclass(frozen=True)
class SignedRequest:
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class AckResponse:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def message(self) -> str:
        """The ack's visible text: the plain body, or every string of a JSON (text + blocks) body."""
        if not self.body.startswith("{"):
            return self.body
        return _strings(self.json())


def _strings(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_strings(v) for v in value.values())
    if isinstance(value, list):
        return "\n".join(_strings(v) for v in value)
    return ""


def sign(
    secret: str, body: str, timestamp: int | None = None, *, content_type: str = "application/x-www-form-urlencoded"
) -> SignedRequest:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return SignedRequest(
        body=body,
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
    )


def command_body(
    text: str,
    *,
    user_id: str = "U0ALICE",
    channel_id: str = "C0INCIDENT",
    response_url: str = "http://127.0.0.1:9/response/none",
    trigger_id: str | None = None,
    team_id: str = "T0TEAM",
    api_app_id: str = "A0APP",
    command: str = "/ecs-exec",
) -> str:
    n = next(_counter)
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "team_domain": "fake",
            "channel_id": channel_id,
            "channel_name": "incident",
            "user_id": user_id,
            "user_name": "someone",
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or f"{n}.{int(time.time())}.trigger{n:06d}",
        }
    )


def mention_event(
    text: str,
    *,
    user: str = "U0ALICE",
    channel: str = "C0INCIDENT",
    bot_user_id: str = "U0BOT",
    ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """An ``app_mention`` event as Slack sends it: the text starts with the bot's mention."""
    n = next(_counter)
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{bot_user_id}> {text}",
        "ts": ts or f"{int(time.time())}.{n:06d}",
        "channel": channel,
        "event_ts": ts or f"{int(time.time())}.{n:06d}",
        "client_msg_id": f"msg-{n}",
        "team": "T0TEAM",
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def event_callback_body(
    event: dict[str, Any], *, event_id: str | None = None, team_id: str = "T0TEAM", api_app_id: str = "A0APP"
) -> str:
    """The Events API envelope (``type: event_callback``) around ``event``, as a JSON body."""
    n = next(_counter)
    return json.dumps({
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{n:08d}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": "U0BOT", "is_bot": True}],
    })


def message_action_payload(
    *,
    callback_id: str = "ecs_exec_run_shortcut",
    user: str = "U0ALICE",
    channel: str = "C0INCIDENT",
    message_ts: str = "1699990000.000100",
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """A message shortcut click (``message_action``) on a message (in a thread when ``thread_ts``)."""
    n = next(_counter)
    message: dict[str, Any] = {"type": "message", "user": "U0CAROL", "ts": message_ts, "text": "502s again"}
    if thread_ts is not None:
        message["thread_ts"] = thread_ts
    return {
        "type": "message_action",
        "callback_id": callback_id,
        "trigger_id": f"{n}.{int(time.time())}.shortcut",
        "action_ts": f"{time.time():.6f}",
        "team": {"id": "T0TEAM", "domain": "fake"},
        "user": {"id": user, "team_id": "T0TEAM"},
        "channel": {"id": channel, "name": "incident"},
        "message": message,
        "message_ts": message_ts,
        "response_url": "http://127.0.0.1:9/response/none",
        "api_app_id": "A0APP",
    }


def view_submission_payload(
    view: dict[str, Any], *, service: str, command: str, reason: str | None = None, user: str = "U0ALICE",
    view_id: str | None = None,
) -> dict[str, Any]:
    """The submission of ``view`` (as the bot opened it) with the fields filled in."""
    n = next(_counter)
    values: dict[str, Any] = {
        "service": {"service": {"type": "static_select", "selected_option": {
            "text": {"type": "plain_text", "text": service}, "value": service}}},
        "command": {"command": {"type": "plain_text_input", "value": command}},
        "reason": {"reason": {"type": "plain_text_input", "value": reason}},
    }
    return {
        "type": "view_submission",
        "team": {"id": "T0TEAM", "domain": "fake"},
        "user": {"id": user, "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "trigger_id": f"{n}.{int(time.time())}.submit",
        "view": {**view, "id": view_id or f"V{n:08d}", "hash": f"{n}.hash", "state": {"values": values}},
        "response_urls": [],
    }


def block_actions_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


class SlackSender:
    """Posts signed requests to ``<app_url>/slack/events``."""

    def __init__(self, app_url: str, signing_secret: str) -> None:
        self.events_url = f"{app_url}/slack/events"
        self.secret = signing_secret

    async def post(self, request: SignedRequest) -> AckResponse:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                self.events_url, data=request.body.encode(), headers=request.headers
            ) as resp:
                return AckResponse(resp.status, await resp.text())

    async def command(self, text: str, **fields: Any) -> AckResponse:
        return await self.post(sign(self.secret, command_body(text, **fields)))

    async def interaction(self, payload: dict[str, Any]) -> AckResponse:
        """Any interactivity payload (``payload=<json>`` form body): shortcuts, view submissions, clicks."""
        return await self.post(sign(self.secret, block_actions_body(payload)))

    async def event(self, body: str, *, retry_num: int | None = None) -> AckResponse:
        """An Events API delivery; ``retry_num``: Slack's retry headers (same body, same event_id)."""
        signed = sign(self.secret, body, content_type="application/json")
        if retry_num is not None:
            signed.headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
        return await self.post(signed)
