"""What Slack sends the bot, built and signed exactly as Slack does (pure).

A slash command is a form body; a button click is a form body with one field, ``payload``, holding the
``block_actions`` JSON. Both are signed with ``v0=HMAC-SHA256(secret, "v0:<ts>:<body>")`` over the exact
bytes sent (api.slack.com/authentication/verifying-requests-from-slack).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

TEAM_ID = "T0DEMO"
APP_ID = "A0DEMO"


@dataclass(frozen=True)
class Channel:
    id: str
    name: str


@dataclass(frozen=True)
class SignedRequest:
    body: str
    headers: dict[str, str]


def sign(secret: str, body: str, timestamp: int, content_type: str = "application/x-www-form-urlencoded") -> SignedRequest:
    ts = str(timestamp)
    return SignedRequest(
        body=body,
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
        },
    )


def slash_command_body(
    *, text: str, user_id: str, user_name: str, channel: Channel, response_url: str, trigger_id: str
) -> str:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "demo",
            "channel_id": channel.id,
            "channel_name": channel.name,
            "user_id": user_id,
            "user_name": user_name,
            "command": "/ecs-exec",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def find_button(blocks: Any, action_id: str) -> tuple[str | None, dict[str, Any]] | None:
    """``(block_id, button)`` of the first button with ``action_id`` in a message's blocks."""
    for block in blocks or ():
        if not isinstance(block, Mapping) or block.get("type") != "actions":
            continue
        for element in block.get("elements") or ():
            if isinstance(element, Mapping) and element.get("action_id") == action_id:
                return block.get("block_id"), dict(element)
    return None


def block_actions_body(
    *,
    user_id: str,
    user_name: str,
    channel: Channel,
    message_ts: str,
    message: Mapping[str, Any],
    block_id: str | None,
    button: Mapping[str, Any],
    response_url: str,
    trigger_id: str,
    action_ts: str,
) -> str:
    """The form body Slack posts when ``user_id`` clicks ``button`` of the message ``message_ts``."""
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel.id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": "demo"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel.name},
        "message": {"type": "message", "ts": message_ts, **{k: message[k] for k in ("text", "blocks") if k in message}},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": button.get("action_id"),
                "block_id": block_id,
                "text": button.get("text"),
                "value": button.get("value"),
                "style": button.get("style"),
                "action_ts": action_ts,
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


def app_mention_body(
    *, text: str, user_id: str, bot_user_id: str, channel: Channel, ts: str, thread_ts: str | None, event_id: str
) -> str:
    """The Events API envelope of ``@ecs-exec <text>`` (JSON, as Slack posts events)."""
    event: dict[str, Any] = {"type": "app_mention", "user": user_id, "text": f"<@{bot_user_id}> {text}", "ts": ts,
                             "channel": channel.id, "event_ts": ts, "team": TEAM_ID}
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return json.dumps({
        "token": "deprecated-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
        "type": "event_callback", "event_id": event_id, "event_time": int(float(ts)),
        "authorizations": [{"team_id": TEAM_ID, "user_id": bot_user_id, "is_bot": True}],
    })


def view_submission_body(*, user_id: str, user_name: str, view: Mapping[str, Any], values: Mapping[str, Any],
                         trigger_id: str) -> str:
    """The form body Slack posts when ``user_id`` submits ``view`` (as the bot opened it) with ``values``."""
    payload = {
        "type": "view_submission", "team": {"id": TEAM_ID, "domain": "demo"},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID, "token": "deprecated-verification-token", "trigger_id": trigger_id,
        "view": {**view, "state": {"values": dict(values)}}, "response_urls": [], "is_enterprise_install": False,
    }
    return urlencode({"payload": json.dumps(payload)})
