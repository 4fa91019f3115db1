"""Checks that a rendered message stays within Slack's limits and is well formed (used by the tests)."""

from __future__ import annotations

import re
from typing import Any

from bot.output.render import slack_len

_BARE_AMP = re.compile(r"&(?!amp;|lt;|gt;)")


def _texts(block: dict[str, Any]) -> list[str]:
    out = []
    if "text" in block and isinstance(block["text"], dict):
        out.append(block["text"]["text"])
    for el in block.get("elements", []):
        if el.get("type") in ("mrkdwn", "plain_text"):
            out.append(el["text"])
    return out


def assert_valid_message(text: str, blocks: list[dict[str, Any]], *, escaped_output: bool = True) -> None:
    assert text and slack_len(text) <= 3000
    assert 1 <= len(blocks) <= 50
    total = 0
    for block in blocks:
        assert block["type"] in ("section", "context", "actions", "header", "divider")
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
        if block["type"] == "actions":
            assert 1 <= len(block["elements"]) <= 25
            for el in block["elements"]:
                assert len(el["action_id"]) <= 255 and 1 <= len(el["value"]) <= 2000
                assert len(el["text"]["text"]) <= 75
                if "confirm" in el:
                    c = el["confirm"]
                    assert len(c["title"]["text"]) <= 100 and len(c["text"]["text"]) <= 300
                    assert len(c["confirm"]["text"]) <= 30 and len(c["deny"]["text"]) <= 30
        for t in _texts(block):
            assert t and slack_len(t) <= 3000, slack_len(t)
            total += slack_len(t)
            assert t.count("```") % 2 == 0, t  # code fences balanced: nothing inside closes them early
            if escaped_output:
                assert not _BARE_AMP.search(t), t  # no raw & and no entity split in half
            for body in re.findall(r"```\n(.*?)\n```", t, flags=re.S):
                assert "<" not in body and ">" not in body and "``" not in body
        if "block_id" in block:
            assert len(block["block_id"]) <= 255
    assert total <= 12_000, total
