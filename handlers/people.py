"""Who a Slack user is to this workspace: a member, a guest, or someone from another organisation.

Guests (``is_restricted``: multi-channel, ``is_ultra_restricted``: single-channel) and Slack Connect users
(``users.info`` gives another ``team_id``, or ``is_stranger``) are refused by default; a policy rule
admits them with ``allow_guests: true``. ``users.info`` is Tier 4, but one call per user and hour is
plenty: standings are cached, one lookup per user in flight, shielded from the ack path's timeout.
A user Slack cannot describe is treated as external (deny by default).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.runs.intake import Standing

log = logging.getLogger("ecs_exec_bot.people")


def standing_from(user: Mapping[str, Any], home_team: str, home_enterprise: str | None = None) -> Standing:
    """A ``users.info`` user object → member / guest / external (pure). On an Enterprise Grid install, a
    user of another workspace of the same organisation is not external."""
    same_org = bool(home_enterprise) and (user.get("enterprise_user") or {}).get("enterprise_id") == home_enterprise
    other_team = bool(user.get("team_id")) and user.get("team_id") != home_team
    if user.get("is_stranger") or (other_team and not same_org):
        return "external"
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        return "guest"
    return "member"


class PeopleCache:
    def __init__(
        self, client: AsyncWebClient, home_team: str, *, home_enterprise: str | None = None,
        ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._home_team = home_team
        self._home_enterprise = home_enterprise
        self._ttl = ttl
        self._clock = clock
        self._known: dict[str, tuple[Standing, float]] = {}
        self._inflight: dict[str, asyncio.Task[Standing]] = {}

    async def standing_of(self, user_id: str) -> Standing:
        known = self._known.get(user_id)
        if known is not None and self._clock() - known[1] < self._ttl:
            return known[0]
        task = self._inflight.get(user_id)
        if task is None:
            task = asyncio.ensure_future(self._fetch(user_id))
            self._inflight[user_id] = task
            task.add_done_callback(functools.partial(self._forget, user_id))
        return await asyncio.shield(task)

    async def standing_of_within(self, user_id: str, wait_s: float) -> Standing | None:
        """`standing_of`, or None when Slack takes longer than ``wait_s`` (the lookup goes on)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.standing_of(user_id)), wait_s)
        except TimeoutError:
            return None

    def _forget(self, user_id: str, _done: asyncio.Future[Standing]) -> None:
        self._inflight.pop(user_id, None)

    async def _fetch(self, user_id: str) -> Standing:
        try:
            resp = await self._client.users_info(user=user_id)
            standing = standing_from(resp.get("user") or {}, self._home_team, self._home_enterprise)
        except SlackApiError as exc:
            log.warning("users.info for %s failed (%s): treated as external", user_id, exc.response.get("error"))
            return "external"  # not cached: the next request asks again
        self._known[user_id] = (standing, self._clock())
        return standing
