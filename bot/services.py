"""Services: everything an adapter (the Slack handlers, the demo, a test) uses, built once, frozen.

`build_services` is the core's composition: ledger, executor, limits and audit over one store and one
backend. The Slack adapter's composition root (`handlers.app.build_slack_services`) loads the settings,
opens the store and calls it; tests call it with their own store, backend and group directory.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.audit import DEFAULT_RETENTION_DAYS, Auditor
from bot.errors import ConfigError
from bot.output.redact import Redactor
from bot.runs.executor import RunExecutor
from bot.runs.followups import FollowUps
from bot.runs.jobs import JobTracker
from bot.runs.ledger import RunLedger
from bot.runs.limits import RunLimiter
from bot.runs.queue import QueueLimits, RunQueue

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.runs.backend import ExecBackend
    from bot.runs.intake import Standing
    from bot.settings import Settings
    from bot.store.base import Store
    from bot.store.outputs import KeptOutputs

REPLICA_ID_ENV = "ECS_EXEC_BOT_REPLICA_ID"
DEFAULT_QUEUE = QueueLimits()


class GroupDirectory(Protocol):
    """Who is in which user group (Slack's ``usergroups.users.list``, cached, in production)."""

    async def groups_of(self, user_id: str, group_ids: Collection[str]) -> frozenset[str]: ...

    async def groups_of_within(
        self, user_id: str, group_ids: Collection[str], timeout: float  # noqa: ASYNC109 - a lookup budget
    ) -> frozenset[str] | None: ...


class PeopleDirectory(Protocol):
    """Whether a user is a member, a guest or external (Slack's ``users.info``, cached, in production)."""

    async def standing_of(self, user_id: str) -> Standing: ...

    async def standing_of_within(self, user_id: str, wait_s: float) -> Standing | None: ...


@dataclass(frozen=True)
class AckBudget:
    """What the request path may spend before its ack (Slack's limit is 3 s for the whole round trip)."""

    # A group-membership lookup: past it, ack "checking…" and decide after the ack.
    lookup_s: float = 1.0
    # Each store call before the ack (the dedupe claim): past it the request is refused as "busy".
    store_s: float = 1.5
    # Replays are possible for 5 minutes (Bolt accepts a signed request that long); keep claims longer.
    claim_ttl_s: float = 900.0


@dataclass(frozen=True)
class Services:
    config: BotConfig
    runs: RunLedger
    executor: RunExecutor
    backend: ExecBackend
    groups: GroupDirectory
    auditor: Auditor
    redactor: Redactor
    followups: FollowUps
    jobs: JobTracker = field(default_factory=JobTracker)
    # None: no directory (the CLI, tests): everyone counts as a member.
    people: PeopleDirectory | None = None
    bot_user_id: str | None = None
    ack: AckBudget = AckBudget()

    @property
    def replica_id(self) -> str:
        return self.runs.replica_id


def build_services(
    config: BotConfig,
    store: Store,
    backend: ExecBackend,
    groups: GroupDirectory,
    *,
    notify: Callable[[str], Awaitable[None]] | None = None,
    retention_days: float | None = None,
    limiter: RunLimiter | None = None,
    replica: str | None = None,
    bot_user_id: str | None = None,
    ack: AckBudget = AckBudget(),
    clock: Callable[[], float] = time.time,
    people: PeopleDirectory | None = None,
    queue: QueueLimits = DEFAULT_QUEUE,
    kept: KeptOutputs | None = None,
) -> Services:
    """The core over one store and backend. ``limiter`` defaults to the config's ``limits:``; ``clock``
    (tests) moves approval expiry and audit times; ``kept``: where outputs are kept for follow-ups (None:
    follow-ups off)."""
    redactor = Redactor(config.policy.redact)
    auditor = Auditor(
        store, notify=notify, redact=redactor.redact, clock=clock,
        # 0 means "keep forever"; not given, the auditor's default retention.
        retention_days=DEFAULT_RETENTION_DAYS if retention_days is None else (retention_days or None),
    )
    ledger = RunLedger(store, auditor, replica_id=replica or replica_id(), clock=clock)
    followups = FollowUps(kept, config, ledger, auditor, redactor, clock=clock)
    executor = RunExecutor(
        backend, ledger, auditor, limiter or RunLimiter(store, config.limits),
        fanout_concurrency=config.fanout.concurrency, queue=RunQueue(queue), followups=followups,
    )
    return Services(
        config=config, runs=ledger, executor=executor, backend=backend, groups=groups, auditor=auditor,
        redactor=redactor, followups=followups, bot_user_id=bot_user_id, ack=ack, people=people,
    )


async def open_services(
    settings: Settings,
    groups: GroupDirectory,
    *,
    notify: Callable[[str], Awaitable[None]] | None = None,
    session_factory: Callable[..., Any] | None = None,
    bot_user_id: str | None = None,
    people: PeopleDirectory | None = None,
) -> Services:
    """Production wiring from the settings: the config file, the store it names, AWS per environment."""
    import asyncio

    from bot.aws import AwsClientFactory
    from bot.config import load_config
    from bot.runs.backend import AwsExecBackend
    from bot.store import open_store
    from bot.store.outputs import open_outputs

    if settings.config_file is None:
        raise ConfigError(
            "ECS_EXEC_BOT_CONFIG is not set, so there is no service catalogue or policy.",
            fix="Point it at the YAML file with environments, services and policy.",
        )
    config = load_config(settings.config_file)
    store = await asyncio.to_thread(open_store, settings)
    factory = AwsClientFactory(
        config.environments, default_region=settings.aws_region,
        **({"session_factory": session_factory} if session_factory is not None else {}),
    )
    kept = await asyncio.to_thread(
        open_outputs, config.followups, store_dir=settings.sqlite_path.parent, region=settings.aws_region,
        session_factory=session_factory,
    )
    return build_services(
        config, store, AwsExecBackend(config, factory), groups, notify=notify,
        retention_days=settings.audit_retention_days, bot_user_id=bot_user_id, people=people, kept=kept,
    )


def replica_id() -> str:
    """Unique per process: the watchdog tells a dead replica's runs from a live one's by it.

    ``<hostname>-<pid>-<random>``: the random part keeps a restarted process that reuses a pid (PID 1 in a
    container, on every restart) from inheriting its predecessor's runs. ``ECS_EXEC_BOT_REPLICA_ID``
    overrides it; it must then differ between replicas *and* between restarts, or a restarted replica
    would not recover its predecessor's runs until their deadline."""
    override = os.environ.get(REPLICA_ID_ENV, "").strip()
    if override:
        return override
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
