"""Small readers over FakeSlack's recordings for the end-to-end tests."""

from __future__ import annotations

import json
from typing import Any

from tests.support.fake_slack import Call, FakeSlack


def all_text(value: Any) -> str:
    """Every string inside a Slack message (text, blocks, nested elements), one per line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(all_text(v) for v in value.values())
    if isinstance(value, list | tuple):
        return "\n".join(all_text(v) for v in value)
    return ""


def message_text(fake: FakeSlack, ts: str) -> str:
    return all_text(fake.messages[ts])


def everything_sent(fake: FakeSlack) -> str:
    """Every byte the bot sent to Slack (API params, response_url posts, uploaded files), as text."""
    parts: list[str] = []
    for call in fake.calls("/"):
        parts.append(call.body.decode("utf-8", "replace"))
        parts.append(all_text(call.params))
    return "\n".join(parts)


def responses(fake: FakeSlack, key: str) -> list[dict[str, Any]]:
    return [json.loads(c.body) for c in fake.calls(f"/response/{key}")]


def last_update(fake: FakeSlack) -> Call:
    return fake.calls("chat.update")[-1]
