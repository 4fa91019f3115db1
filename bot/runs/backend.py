"""What the run core needs from AWS: resolve a service to targets, run on one target, end a session,
check a service. `AwsExecBackend` implements it with `bot.targets` + `bot.runner`; tests may fake it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.aws import AwsClientFactory
    from bot.config import BotConfig
    from bot.doctor import DoctorReport
    from bot.runner import ExecResult, ExecRunner, OnProgress, OnStarted
    from bot.service_ref import ServiceRef
    from bot.targets import Target


class ExecBackend(Protocol):
    async def resolve(
        self, service: ServiceRef, *, task: str | None, container: str | None, all_tasks: bool, requester: str
    ) -> list[Target]: ...

    async def run(
        self,
        target: Target,
        command: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the runner contract's name
        requester: str,
        cancel: asyncio.Event | None,
        on_started: OnStarted | None,
        on_progress: OnProgress | None = None,
    ) -> ExecResult: ...

    async def terminate_session(self, environment: str, session_id: str, *, requester: str) -> None: ...

    async def doctor(
        self, service_alias: str, *, task: str | None, requester: str, probe: bool = False
    ) -> DoctorReport:
        """The checklist; with ``probe``, also the live outcome of `true` through ECS Exec on the task."""
        ...


class AwsExecBackend:
    """`ExecBackend` over `bot.targets` + `bot.runner`, with clients per environment (role assumed with
    the requester as SourceIdentity, see `bot.aws.AwsClientFactory`)."""

    def __init__(self, config: BotConfig, factory: AwsClientFactory, runner: ExecRunner | None = None) -> None:
        from bot.runner import ExecRunner

        self._config = config
        self._factory = factory
        self._runner = runner or ExecRunner(factory.for_environment)

    async def resolve(
        self, service: ServiceRef, *, task: str | None, container: str | None, all_tasks: bool, requester: str
    ) -> list[Target]:
        from bot.targets import resolve_targets

        clients = await asyncio.to_thread(self._factory.for_environment, service.environment, requester)
        return await resolve_targets(
            clients, service, task=task, container=container, all_tasks=all_tasks,
            cap=self._config.fanout.max_tasks,
        )

    async def run(
        self,
        target: Target,
        command: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the runner contract's name
        requester: str,
        cancel: asyncio.Event | None,
        on_started: OnStarted | None,
        on_progress: OnProgress | None = None,
    ) -> ExecResult:
        return await self._runner.run(
            target, command, timeout=timeout, requester=requester, cancel=cancel, on_started=on_started,
            on_progress=on_progress,
        )

    async def terminate_session(self, environment: str, session_id: str, *, requester: str) -> None:
        from bot.ssm.control import Boto3SessionControl

        clients = await asyncio.to_thread(self._factory.for_environment, environment, requester)
        await Boto3SessionControl(clients.ssm).terminate_session(session_id)

    async def doctor(
        self, service_alias: str, *, task: str | None, requester: str, probe: bool = False
    ) -> DoctorReport:
        from bot.doctor import run_doctor

        report = await run_doctor(self._config, self._factory, service_alias, task=task, requester=requester)
        if not probe:
            return report
        from bot.doctor_fetch import live_probe

        return report.with_check(
            await live_probe(self._config, self._factory, service_alias, task=task, requester=requester)
        )
