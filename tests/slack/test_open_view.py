"""`open_view`: a form opens within the trigger's life, or one sentence says it did not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from bot.errors import SlackError
from handlers import slack_calls


class SlowClient:
    async def views_open(self, **_: Any) -> None:
        await asyncio.sleep(10)


class RefusingClient:
    async def views_open(self, **_: Any) -> None:
        raise SlackApiError("expired", {"ok": False, "error": "expired_trigger_id"})


async def test_a_slow_views_open_is_given_up_inside_the_triggers_life(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slack_calls, "VIEWS_OPEN_S", 0.05)
    with pytest.raises(SlackError, match="did not open the form in time"):
        await slack_calls.open_view(SlowClient(), "t", {"type": "modal"})  # type: ignore[arg-type]
    assert slack_calls.VIEWS_OPEN_S < 3  # the trigger's life


async def test_a_refused_views_open_names_slacks_error() -> None:
    with pytest.raises(SlackError, match="expired_trigger_id"):
        await slack_calls.open_view(RefusingClient(), "t", {"type": "modal"})  # type: ignore[arg-type]
