"""Slack user-group membership, cached: which of the policy's groups (``S…``) a user is in.

``usergroups.users.list`` is Tier 2 (about 20 calls a minute), far below the rate of slash commands
during an incident, so members are cached per group for ``ttl`` seconds. One fetch per group is in
flight at a time (concurrent callers share it), and a fetch is shielded from its caller's timeout, so
the ack path can wait briefly (`groups_of_within`) and carry on after the ack while the fetch finishes.
A failed refresh keeps serving the last good member list for ``stale_ttl`` seconds: a Slack hiccup
should not lock the on-call engineer out mid-incident, and a removed member lapses after ``stale_ttl``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("ecs_exec_bot.usergroups")


@dataclass(frozen=True)
class _Entry:
    members: frozenset[str]
    fetched_at: float


class UserGroupCache:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl: float = 300.0,
        stale_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._stale_ttl = stale_ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[frozenset[str]]] = {}

    async def groups_of(self, user_id: str, group_ids: Iterable[str]) -> frozenset[str]:
        """The subset of ``group_ids`` that ``user_id`` belongs to (fetching what is not cached)."""
        wanted = sorted(set(group_ids))
        members = await asyncio.gather(*(self.members(g) for g in wanted))
        return frozenset(g for g, m in zip(wanted, members, strict=True) if user_id in m)

    async def groups_of_within(
        self, user_id: str, group_ids: Iterable[str], wait_s: float
    ) -> frozenset[str] | None:
        """`groups_of`, or None if it takes longer than ``wait_s``; the fetches keep running (shielded)
        so a later call finds them done."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.groups_of(user_id, group_ids)), wait_s)
        except TimeoutError:
            return None

    async def members(self, group_id: str) -> frozenset[str]:
        entry = self._entries.get(group_id)
        now = self._clock()
        if entry is not None and now - entry.fetched_at < self._ttl:
            return entry.members
        task = self._inflight.get(group_id)
        if task is None:
            task = asyncio.ensure_future(self._fetch(group_id))
            self._inflight[group_id] = task
            task.add_done_callback(functools.partial(self._forget, group_id))
        return await asyncio.shield(task)

    def _forget(self, group_id: str, _done: asyncio.Future[frozenset[str]]) -> None:
        self._inflight.pop(group_id, None)

    def invalidate(self, group_id: str | None = None) -> None:
        if group_id is None:
            self._entries.clear()
        else:
            self._entries.pop(group_id, None)

    async def _fetch(self, group_id: str) -> frozenset[str]:
        try:
            resp = await self._client.usergroups_users_list(usergroup=group_id)
            members = frozenset(str(u) for u in (resp.get("users") or []))
        except (SlackApiError, OSError, TimeoutError, ValueError) as exc:
            detail = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
            previous = self._entries.get(group_id)
            if previous is not None and self._clock() - previous.fetched_at < self._stale_ttl:
                log.warning(
                    "usergroups.users.list %s failed (%s); using the cached members", group_id, detail
                )
                return previous.members
            # Deny by default: an unknown membership counts as "not a member". The usual cause is a
            # missing `usergroups:read` scope or a group id that does not exist (policy typo).
            log.error(
                "usergroups.users.list %s failed (%s); treating the group as empty. Check the bot's "
                "usergroups:read scope and the group id in the policy file.",
                group_id,
                detail,
            )
            return frozenset()
        self._entries[group_id] = _Entry(members, self._clock())
        return members
