"""Which task and container a command runs in, and why it cannot when it cannot.

A service reference (catalogue alias, or a raw ECS service name with `--cluster`) becomes one or more
``Target``: a RUNNING task of that service with ECS Exec enabled and the container's
``ExecuteCommandAgent`` RUNNING. Every refusal is a ``TargetError`` whose sentence names the task or
service and says how to fix it, because "InvalidParameterException" helps nobody at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws import AwsClients, aws_call, describe_aws_error, error_code
from bot.errors import TargetError
from bot.service_ref import ServiceRef, did_you_mean

AGENT_NAME = "ExecuteCommandAgent"


@dataclass(frozen=True)
class Target:
    environment: str
    cluster: str  # the cluster *name* (last part of its ARN)
    service: str
    task_arn: str
    task_id: str
    container: str
    runtime_id: str | None
    shell: bool

    @property
    def ssm_target(self) -> str | None:
        """`ecs:<cluster>_<taskId>_<runtimeId>`: the KMS encryption context of the session."""
        return f"ecs:{self.cluster}_{self.task_id}_{self.runtime_id}" if self.runtime_id else None

    @property
    def short_task(self) -> str:
        return self.task_id[:12]


def exec_enable_command(cluster: str, service: str) -> str:
    return (f"aws ecs update-service --cluster {cluster} --service {service} "
            "--enable-execute-command --force-new-deployment")


async def resolve_targets(
    clients: AwsClients,
    service_ref: ServiceRef,
    *,
    task: str | None = None,
    container: str | None = None,
    all_tasks: bool = False,
    cap: int = 10,
) -> list[Target]:
    """RUNNING, exec-ready targets of the service: one (default or ``task``), or every task (``all_tasks``)."""
    ref = service_ref
    ecs = clients.ecs
    cluster_name = (await describe_service(ecs, ref)).get("clusterArn", ref.cluster).rsplit("/", 1)[-1]
    tasks = await service_tasks(ecs, ref.cluster, ref.service)
    definitions: dict[str, dict[str, Any]] = {}

    if task:
        chosen = match_task(tasks, task)
        if not chosen:
            raise await task_not_in_service(ecs, ref, task)
    elif not tasks:
        raise TargetError(
            f"Service {ref.service} in cluster {ref.cluster} has no RUNNING task.",
            fix="Check the service's desired count and its events (`aws ecs describe-services`), then retry.",
        )
    elif all_tasks and len(tasks) > cap:
        raise TargetError(
            f"Service {ref.service} has {len(tasks)} running tasks, more than the fan-out cap of {cap}.",
            fix="Pick one with --task, or raise fanout.max_tasks in the config file.",
        )
    else:
        chosen = tasks  # all of them (fan-out), or candidates for the first usable one

    targets: list[Target] = []
    problems: list[TargetError] = []
    for t in chosen:
        name = container or ref.container or await _default_container(ecs, t, definitions)
        problem = check_task(t, name, ref)
        if problem is not None:
            problems.append(problem)
            continue
        c = _container(t, name)
        targets.append(Target(
            environment=ref.environment,
            cluster=cluster_name,
            service=ref.service,
            task_arn=t["taskArn"],
            task_id=_task_id(t),
            container=name,
            runtime_id=(c or {}).get("runtimeId"),
            shell=ref.shell,
        ))
        if not all_tasks:
            break
    if problems and (all_tasks or not targets):
        # Fan-out never silently skips a task: a partial "ran everywhere" would be a lie.
        raise problems[0]
    return targets


MIN_TASK_PREFIX = 6  # shorter prefixes are too easy to type by accident (and to collide)


def match_task(tasks: Sequence[dict[str, Any]], ref: str) -> list[dict[str, Any]]:
    """The task ``ref`` names: its ARN, its id, a unique prefix of its id, or the short id Slack shows
    (``3f2a9c…e1``: prefix and suffix).

    An ambiguous prefix is refused with the candidates rather than guessed: running a command on a task
    the user did not mean is the one outcome worse than not running it.
    """
    exact = [t for t in tasks if ref in (t["taskArn"], _task_id(t))]
    if exact or len(ref) < MIN_TASK_PREFIX or "/" in ref:
        return exact
    head, _, tail = ref.partition("…")
    prefixed = [t for t in tasks if _task_id(t).startswith(head) and _task_id(t).endswith(tail)]
    if len(prefixed) > 1:
        ids = ", ".join(sorted(_task_id(t)[:12] + "…" for t in prefixed))
        raise TargetError(f"Task prefix {ref!r} matches {len(prefixed)} running tasks ({ids}).",
                          fix="Give more characters of the task id.")
    return prefixed


def check_task(task: dict[str, Any], container: str, ref: ServiceRef) -> TargetError | None:
    """Why ``container`` of ``task`` cannot take an ECS Exec session, or None when it can."""
    tid = _task_id(task)
    status = task.get("lastStatus", "UNKNOWN")
    if status != "RUNNING":
        return TargetError(f"Task {tid} is {status}, not RUNNING.",
                           fix="Omit --task to use a running task of the service.")
    if not task.get("enableExecuteCommand"):
        return TargetError(
            f"ECS Exec is not enabled on task {tid} of service {ref.service}.",
            fix=f"Run `{exec_enable_command(ref.cluster, ref.service)}` and retry once the new tasks run.",
        )
    c = _container(task, container)
    if c is None:
        names = ", ".join(x.get("name", "?") for x in task.get("containers", []))
        return TargetError(f"Task {tid} has no container named {container!r} (it has: {names}).",
                           fix="Use --container with one of those names (or fix `container:` in the catalogue).")
    agent = next((a for a in c.get("managedAgents", []) if a.get("name") == AGENT_NAME), None)
    agent_status = (agent or {}).get("lastStatus")
    if agent_status == "RUNNING":
        return None
    doctor = f"`ecs-exec-bot doctor {ref.name}`"
    if agent is None:
        return TargetError(
            f"Container {container} of task {tid} has no ExecuteCommandAgent.",
            fix=f"Use Fargate platform 1.4.0+ (or ECS agent 1.50.2+) and replace the task; {doctor} shows why.",
        )
    if agent_status in ("PENDING", None):
        return TargetError(f"The ExecuteCommandAgent in container {container} of task {tid} is still starting.",
                           fix="Wait a few seconds and retry.")
    return TargetError(
        f"The ExecuteCommandAgent in container {container} of task {tid} is {agent_status}.",
        fix=f"Replace the task (`{exec_enable_command(ref.cluster, ref.service)}`); {doctor} shows why it stopped.",
    )


async def service_tasks(ecs: Any, cluster: str, service: str) -> list[dict[str, Any]]:
    """Described RUNNING tasks of ``service``, oldest task ARN order kept as ECS returns it.

    ``list_tasks(serviceName=...)`` is trusted on AWS but re-checked through ``group == service:<name>``:
    moto ignores the filter, and the check costs nothing.
    """
    arns: list[str] = []
    token: str | None = None
    while True:
        page = await _call(ecs.list_tasks, "ecs:ListTasks", f"cluster {cluster}", cluster=cluster,
                           serviceName=service, desiredStatus="RUNNING",
                           **({"nextToken": token} if token else {}))
        arns += page.get("taskArns", [])
        token = page.get("nextToken")
        if not token:
            break
    tasks = await describe_tasks(ecs, cluster, arns)
    return [t for t in tasks if t.get("group") == f"service:{service}" and t.get("lastStatus") == "RUNNING"]


async def describe_tasks(ecs: Any, cluster: str, arns: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):  # DescribeTasks takes at most 100 tasks
        page = await _call(ecs.describe_tasks, "ecs:DescribeTasks", f"cluster {cluster}", cluster=cluster,
                           tasks=list(arns[i:i + 100]))
        out += page.get("tasks", [])
    return out


async def describe_service(ecs: Any, ref: ServiceRef) -> dict[str, Any]:
    """The service's description; fails early, with close matches, on an unknown cluster or service."""
    try:
        resp = await aws_call(ecs.describe_services, cluster=ref.cluster, services=[ref.service])
    except (ClientError, BotoCoreError) as exc:
        if error_code(exc) == "ClusterNotFoundException":
            clusters = await _names(ecs.list_clusters, "clusterArns")
            raise TargetError(
                f"Unknown cluster {ref.cluster!r}{did_you_mean(ref.cluster, clusters)}.",
                fix="Check --cluster (or `cluster:` in the catalogue) and the region/account of the environment.",
            ) from None
        raise describe_aws_error(exc, action="ecs:DescribeServices", resource=f"service {ref.service}") from None
    services = [s for s in resp.get("services", []) if s.get("status") != "INACTIVE"]
    if not services:
        names = await _names(ecs.list_services, "serviceArns", cluster=ref.cluster)
        raise TargetError(
            f"Unknown service {ref.service!r} in cluster {ref.cluster}{did_you_mean(ref.service, names)}.",
            fix="Check the service name (`aws ecs list-services --cluster " f"{ref.cluster}`).",
        )
    return services[0]


async def task_not_in_service(ecs: Any, ref: ServiceRef, task: str) -> TargetError:
    found = await describe_tasks(ecs, ref.cluster, [task])
    if not found:
        return TargetError(f"No task {task!r} in cluster {ref.cluster}.",
                           fix="Omit --task to pick a running task of the service, or check the task id.")
    t = found[0]
    group = t.get("group", "")
    if group != f"service:{ref.service}":
        return TargetError(f"Task {_task_id(t)} belongs to {group or 'no service'}, not service {ref.service}.",
                           fix="Use a task of this service, or omit --task.")
    reason = f" ({t['stoppedReason']})" if t.get("stoppedReason") else ""
    return TargetError(f"Task {_task_id(t)} is {t.get('lastStatus', 'UNKNOWN')}, not RUNNING{reason}.",
                       fix="Omit --task to use a running task of the service.")


async def _default_container(ecs: Any, task: dict[str, Any], cache: dict[str, dict[str, Any]]) -> str:
    containers = task.get("containers", [])
    if len(containers) == 1:
        return containers[0]["name"]
    arn = task.get("taskDefinitionArn", "")
    if arn not in cache:
        resp = await _call(ecs.describe_task_definition, "ecs:DescribeTaskDefinition", arn, taskDefinition=arn)
        cache[arn] = resp["taskDefinition"]
    for cdef in cache[arn].get("containerDefinitions", []):
        if cdef.get("essential", True):
            return cdef["name"]
    return containers[0]["name"] if containers else "?"


async def _call(fn: Any, action: str, resource: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return await aws_call(fn, **kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise describe_aws_error(exc, action=action, resource=resource) from None


async def _names(fn: Any, key: str, **kwargs: Any) -> list[str]:
    """Names from a list_* call, for "did you mean"; best effort (a failure just means no suggestion)."""
    try:
        resp = await aws_call(fn, **kwargs)
    except (ClientError, BotoCoreError):
        return []
    return [arn.rsplit("/", 1)[-1] for arn in resp.get(key, [])]


def _container(task: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in task.get("containers", []) if c.get("name") == name), None)


def _task_id(task: dict[str, Any]) -> str:
    return task["taskArn"].rsplit("/", 1)[-1]
