"""A service as the user named it (catalogue alias, or a raw ECS service name with `--cluster`).

Pure, and apart from ``bot.targets`` (which asks AWS for the tasks): `ecs-exec-bot policy list` resolves
the catalogue's services without importing boto3.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from bot.config import DEFAULT_TIMEOUT_S, BotConfig
from bot.errors import TargetError

RAW_ENVIRONMENT = "default"


@dataclass(frozen=True)
class ServiceRef:
    """A service as the user named it, resolved through the catalogue (or raw, with `--cluster`)."""

    name: str
    environment: str
    cluster: str
    service: str
    container: str | None = None
    shell: bool = True
    timeout: int = DEFAULT_TIMEOUT_S


def resolve_service_ref(config: BotConfig | None, name: str, *, cluster: str | None = None) -> ServiceRef:
    """Catalogue alias first; with ``cluster`` a raw ECS service name works without any catalogue."""
    services = config.services if config else {}
    alias = services.get(name)
    if alias is not None and config is not None and (
            cluster is None or cluster in (alias.cluster, config.cluster_name_of(alias))):
        return ServiceRef(
            name=name,
            environment=config.environment_of(alias),
            cluster=config.cluster_name_of(alias),
            service=alias.service,
            container=alias.container,
            shell=alias.shell,
            timeout=alias.timeout,
        )
    if cluster is not None:
        return ServiceRef(name=name, environment=RAW_ENVIRONMENT, cluster=cluster, service=name)
    raise TargetError(
        f"Unknown service {name!r}{did_you_mean(name, services)}.",
        fix="Use a service alias from the catalogue, or give --cluster to use a raw ECS service name.",
    )


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
