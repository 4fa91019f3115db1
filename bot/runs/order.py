"""The run order: who asked to run what, where, and where the answer goes. Pure data, no Slack.

A `RunOrder` is built once per request (by the Slack adapter or the CLI) and is everything the core
needs to run it. An approved request is stored first and rebuilt from its record with `order_from_record`,
never from the current catalogue, which may have changed since the approval was asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from bot.runbooks import RunbookPlan
from bot.service_ref import ServiceRef
from bot.store.base import DetailValue, RunRecord


@dataclass(frozen=True)
class Origin:
    """Where the request came from and where its answers go. Opaque to the core: the adapter that built
    the order reads it back (for Slack: the slash command's response_url, the message to update, and the
    thread to post in)."""

    reply_url: str | None = None
    message_ts: str | None = None
    thread_ts: str | None = None


@dataclass(frozen=True)
class RunOrder:
    """One request that may run: who, where, what, within which time budget."""

    request_id: str
    requester: str
    channel_id: str
    service: ServiceRef
    command: str
    timeout: float
    task: str | None = None
    container: str | None = None
    all_tasks: bool = False
    reason: str | None = None
    rule: str | None = None
    approved_by: tuple[str, ...] = ()
    origin: Origin = field(default_factory=Origin)
    runbook: RunbookPlan | None = None  # a runbook run: these steps, on every target (`command` names it)

    def audit_fields(self) -> dict[str, Any]:
        """Who asked for what, where: an audit event's fields and a run record's identity."""
        return dict(
            request_id=self.request_id,
            requester=self.requester,
            channel=self.channel_id,
            service=self.service.name,
            environment=self.service.environment,
            command=self.command,
        )

    def target_selector(self) -> dict[str, DetailValue]:
        """What an approval is bound to (hashed): the exact cluster/service/task/container and fan-out."""
        return {
            "cluster": self.service.cluster,
            "service": self.service.service,
            "container": self.container or self.service.container,
            "task": self.task,
            "all_tasks": self.all_tasks,
        }

    def record_params(self) -> dict[str, DetailValue]:
        """What a record keeps to rebuild this order on any replica (`order_from_record`)."""
        params: dict[str, DetailValue] = {
            "timeout": self.timeout,
            "response_url": self.origin.reply_url,
            "thread_ts": self.origin.thread_ts,
            "service_container": self.service.container,
            "shell": self.service.shell,
            "service_timeout": self.service.timeout,
            "target": json.dumps(self.target_selector(), sort_keys=True),
        }
        if self.runbook is not None:
            params["runbook"] = self.runbook.to_json()
        return params

    def with_message(self, message_ts: str | None) -> RunOrder:
        return replace(self, origin=replace(self.origin, message_ts=message_ts))


def order_from_record(record: RunRecord) -> RunOrder:
    """Rebuild the order from what was stored (and approved): never from the current catalogue."""
    p = record.params
    target = json.loads(str(p.get("target") or "{}"))
    ref = ServiceRef(
        name=record.service,
        environment=record.environment,
        cluster=str(target.get("cluster") or ""),
        service=str(target.get("service") or ""),
        container=_opt(p.get("service_container")),
        shell=bool(p.get("shell", True)),
        timeout=int(p.get("service_timeout") or 60),
    )
    return RunOrder(
        request_id=record.request_id,
        requester=record.requester,
        channel_id=record.channel,
        service=ref,
        command=record.command,
        timeout=float(p.get("timeout") or ref.timeout),
        task=_opt(target.get("task")),
        container=_opt(target.get("container")),
        all_tasks=bool(target.get("all_tasks")),
        reason=record.reason or None,
        rule=record.rule or None,
        approved_by=record.approvers_so_far,
        origin=Origin(
            reply_url=_opt(p.get("response_url")),
            message_ts=record.message_ts,
            thread_ts=_opt(p.get("thread_ts")),
        ),
        runbook=RunbookPlan.from_json(str(p["runbook"])) if p.get("runbook") else None,
    )


def _opt(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
