"""Live progress: while a command runs, its message shows elapsed time, lines and bytes so far and the
last lines, updated with ``chat.update``, within two limits.

- Per message: at most one update every ``interval_s`` (2 s; the "running…" post counts as the first).
- Per workspace: every live message of the process draws from one `bot.token_bucket.TokenBucket`.
  Slack's ``chat.update`` is Tier 3, "50+ per minute" per workspace and app
  (docs.slack.dev/apis/web-api/rate-limits); the default of 40/min (burst 5) leaves room for the final
  results and approval cards, which are counted but never skipped. With several replicas, give each
  ``ECS_EXEC_BOT_LIVE_UPDATES_PER_MINUTE`` = 40 / replicas: the bucket is per process.

Live updates go through a client *without* the 429 retry: a live update that meets a 429 is dropped (a
newer one follows) and pauses every live message for the ``Retry-After``, instead of queueing retries
that would feed a 429 storm. The final result uses the normal client (429s retried by the SDK) and waits
for an in-flight live update first, so the last update of every message is its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.token_bucket import TokenBucket

log = logging.getLogger("ecs_exec_bot.live")

Message = tuple[str, list[dict[str, Any]]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class LiveSettings:
    enabled: bool = True
    interval_s: float = 2.0  # per message
    updates_per_minute: float = 40.0  # all live messages of the workspace together (see the module doc)
    burst: int = 5
    # Seconds after "running…" before the first live update (default: ``interval_s``). Commands quicker
    # than this never get one: their result is the only update.
    first_update_s: float | None = None
    tail_lines: int = 5

    @property
    def first_after_s(self) -> float:
        return self.interval_s if self.first_update_s is None else self.first_update_s


class LiveUpdates:
    """Shared by every run of the process: the settings, the workspace's budget and the live client."""

    def __init__(self, settings: LiveSettings | None = None, *, clock: Clock = time.monotonic) -> None:
        self.settings = settings or LiveSettings()
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._clients: dict[int, AsyncWebClient] = {}

    def budget(self, team: str = "") -> TokenBucket:
        """One bucket per workspace (one bot token serves one: ``team`` is "" unless told)."""
        bucket = self._buckets.get(team)
        if bucket is None:
            s = self.settings
            bucket = TokenBucket.per_minute(s.updates_per_minute, s.burst, clock=self.clock)
            self._buckets[team] = bucket
        return bucket

    def client_for(self, client: AsyncWebClient) -> AsyncWebClient:
        """``client`` without the 429 retry (same token, base URL and connection pool)."""
        live = self._clients.get(id(client))
        if live is None:
            live = AsyncWebClient(
                token=client.token, base_url=client.base_url, timeout=client.timeout, session=client.session,
                retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1)],
            )
            self._clients[id(client)] = live
        return live


class LiveMessage:
    """The live updates of one message: a background task that pushes the latest state when both the
    message's interval and the shared budget allow, until `close`."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        ts: str,
        render: Callable[[], Message],
        live: LiveUpdates,
    ) -> None:
        self._client = live.client_for(client)
        self._channel = channel
        self._ts = ts
        self._render = render
        self._budget = live.budget()
        self._settings = live.settings
        self._clock = live.clock
        self._next_at = self._clock() + live.settings.first_after_s
        self._dirty = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.updates = 0
        self.rate_limited = 0

    def changed(self) -> None:
        """New progress to show (cheap; the push happens in the background)."""
        self._dirty = True
        if self._task is None and not self._stop.is_set():
            self._task = asyncio.create_task(self._push(), name=f"live {self._ts}")

    async def close(self) -> None:
        """Stop updating; an update already on its way is waited for, so nothing lands after the result."""
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _nap(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), max(0.01, seconds))

    async def _push(self) -> None:
        while not self._stop.is_set():
            delay = self._next_at - self._clock()
            if delay > 0:
                await self._nap(delay)
                continue
            if not self._dirty:
                await self._nap(0.25)
                continue
            if not self._budget.try_take():
                # Every live message waits here when the budget is spent; the jitter spreads their retries.
                await self._nap(self._budget.wait_s() + random.uniform(0, 0.5))
                continue
            self._dirty = False
            self._next_at = self._clock() + self._settings.interval_s
            await self._send()

    async def _send(self) -> None:
        try:
            text, blocks = self._render()
            await self._client.chat_update(channel=self._channel, ts=self._ts, text=text, blocks=blocks)
            self.updates += 1
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                self.rate_limited += 1
                retry_after = _retry_after(exc.response.headers)
                self._budget.pause(retry_after)
                log.info("live update rate-limited; live messages pause %.0f s", retry_after)
            else:
                log.warning("live update of %s failed: %s", self._ts, exc.response.get("error"))
        except (BotError, OSError, TimeoutError, ValueError) as exc:
            log.warning("live update of %s failed: %r", self._ts, exc)


def _retry_after(headers: Any) -> float:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == "retry-after":
            with contextlib.suppress(TypeError, ValueError):
                return float(value[0] if isinstance(value, list) else value)
    return 1.0
