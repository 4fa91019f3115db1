"""`doctor`: can ECS Exec work for this service? A pure report builder over already-fetched facts.

The checks follow aws-containers/amazon-ecs-exec-checker and add what it misses (KMS permissions of
the bot itself, `pidMode`, the whole checklist for one chosen task). Fetching lives in
``bot.doctor_fetch``; this module does no I/O, so each rule is unit-tested with plain dicts, and the same
``DoctorReport`` is printed by the CLI and rendered by the Slack handler.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["green", "yellow", "red"]
SSMMESSAGES_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
CREDENTIAL_VARIABLES = frozenset({"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                  "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"})
MIN_FARGATE_PLATFORM = (1, 4, 0)
MIN_ECS_AGENT = (1, 50, 2)
_SYMBOL: dict[Status, str] = {"green": "🟢", "yellow": "🟡", "red": "🔴"}
_RANK: dict[Status, int] = {"green": 0, "yellow": 1, "red": 2}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class NetworkFacts:
    mode: str  # awsvpc | bridge | host | none
    subnet_id: str | None = None
    vpc_id: str | None = None
    ssmmessages_endpoint: bool | None = None  # None: could not be checked
    default_route: Literal["nat", "igw", "none"] | None = None
    public_ip: bool | None = None
    error: str | None = None


@dataclass(frozen=True)
class DoctorFacts:
    """Everything doctor looks at, as returned by AWS (dicts in the boto3 response shapes)."""

    service_name: str  # as the user typed it
    cluster: str
    region: str | None
    service: dict[str, Any]
    task: dict[str, Any] | None  # None: no RUNNING task
    running_tasks: int
    task_definition: dict[str, Any] | None
    container: str | None = None  # only this container (None: every container of the task)
    cluster_kms_key: str | None = None
    ecs_agent_version: str | None = None  # EC2 launch type: the container instance's ECS agent
    role_decisions: dict[str, str] | None = None  # action -> EvalDecision for the task role
    role_error: str | None = None
    network: NetworkFacts | None = None


@dataclass(frozen=True)
class DoctorReport:
    title: str
    checks: list[Check] = field(default_factory=list)

    @property
    def worst(self) -> Status:
        return max((c.status for c in self.checks), key=_RANK.__getitem__, default="green")

    @property
    def ok(self) -> bool:
        return self.worst != "red"

    def render_text(self) -> str:
        lines = [self.title]
        for c in self.checks:
            lines.append(f"{_SYMBOL[c.status]} {c.name}: {c.detail}")
            if c.fix and c.status != "green":
                lines.append(f"   fix: {c.fix}")
        verdict = {"green": "ECS Exec should work.",
                   "yellow": "ECS Exec should work; see the warnings.",
                   "red": "ECS Exec will not work until the red items are fixed."}[self.worst]
        lines.append(verdict)
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.render_text()

    def with_check(self, check: Check) -> DoctorReport:
        return DoctorReport(title=self.title, checks=[*self.checks, check])


def probe_check(*, task_id: str | None, status: str, duration_s: float = 0.0, exit_code: int | None = None,
                error: str | None = None, fix: str | None = None) -> Check:
    """The live probe (`true` through ECS Exec) as one check next to the static ones.

    The static checks say whether ECS Exec *should* work; the probe says whether it *does*, which also
    covers what they cannot see (an SCP, a VPC endpoint policy, the agent's own state)."""
    on = f" on task {task_id}" if task_id else ""
    if status in ("ok", "failed") and error is None:
        code = "exit status unknown (no shell)" if exit_code is None else f"exit {exit_code}"
        return Check("Live probe", "green" if exit_code in (0, None) else "yellow",
                     f"`true` ran through ECS Exec{on} in {duration_s:.1f} s ({code}).",
                     None if exit_code in (0, None) else "The session works; `true` itself failed in the container.")
    if status == "timeout":
        return Check("Live probe", "red", f"`true` did not finish through ECS Exec{on} within {duration_s:.0f} s.",
                     fix or "The session opened but no output came back: check the agent and the task's network.")
    return Check("Live probe", "red", f"`true` could not run through ECS Exec{on}: {error or status}",
                 fix or "See the checks above.")


async def run_doctor(config: Any, factory: Any, service_alias: str, *, task: str | None = None,
                     requester: str = "doctor") -> DoctorReport:
    """Fetch and build in one call, for the Slack handler (``handlers.app``). The I/O is in ``bot.doctor_fetch``."""
    from bot.doctor_fetch import doctor_report  # imported here: this module stays free of AWS code

    return await doctor_report(config, factory, service_alias, task=task, requester=requester)


def build_report(facts: DoctorFacts) -> DoctorReport:
    task = facts.task
    tid = task["taskArn"].rsplit("/", 1)[-1] if task else None
    title = f"doctor: service {facts.service.get('serviceName', facts.service_name)} · cluster {facts.cluster}"
    title += f" · task {tid}" if tid else ""
    return DoctorReport(title=title, checks=list(_checks(facts)))


def _checks(f: DoctorFacts) -> Iterator[Check]:
    svc_name = f.service.get("serviceName", f.service_name)
    enable = (f"aws ecs update-service --cluster {f.cluster} --service {svc_name} "
              "--enable-execute-command --force-new-deployment")
    if f.service.get("enableExecuteCommand"):
        yield Check("Exec on the service", "green", "enableExecuteCommand is true.")
    else:
        yield Check("Exec on the service", "red", "enableExecuteCommand is false.", f"Run `{enable}`.")

    task = f.task
    if task is None:
        yield Check("Running task", "red", "the service has no RUNNING task.",
                    "Check the service's desired count and events (`aws ecs describe-services`).")
    else:
        yield Check("Running task", "green", f"{f.running_tasks} RUNNING task(s); checking "
                                             f"{task['taskArn'].rsplit('/', 1)[-1]}.")
        if task.get("enableExecuteCommand"):
            yield Check("Exec on the task", "green", "the task was started with exec enabled.")
        else:
            yield Check("Exec on the task", "red", "this task was started without exec (tasks keep the "
                                                   "setting they started with).", f"Run `{enable}`.")
        yield from _agent_checks(f, task)
        yield _platform_check(f, task)

    td = f.task_definition or {}
    yield from _container_definition_checks(f, td)
    yield _role_check(f, td)
    yield _kms_check(f)
    yield _network_check(f)
    yield _pid_mode_check(td)


def _agent_checks(f: DoctorFacts, task: dict[str, Any]) -> Iterator[Check]:
    for c in task.get("containers", []):
        if f.container and c.get("name") != f.container:
            continue
        agent = next((a for a in c.get("managedAgents", []) if a.get("name") == "ExecuteCommandAgent"), None)
        status = (agent or {}).get("lastStatus")
        name = f"Agent in {c.get('name')}"
        if status == "RUNNING":
            yield Check(name, "green", "ExecuteCommandAgent is RUNNING.")
        elif status == "PENDING":
            yield Check(name, "yellow", "ExecuteCommandAgent is still starting.", "Wait a few seconds.")
        elif agent is None:
            yield Check(name, "red", "no ExecuteCommandAgent in this container.",
                        "Enable exec on the service and replace the task (--force-new-deployment).")
        else:
            reason = f" ({agent['reason']})" if agent.get("reason") else ""
            yield Check(name, "red", f"ExecuteCommandAgent is {status}{reason}.",
                        "Fix the items below (task role, network), then replace the task.")


def _platform_check(f: DoctorFacts, task: dict[str, Any]) -> Check:
    fargate = task.get("launchType") == "FARGATE"
    if fargate or (f.ecs_agent_version is None and task.get("platformVersion")):
        version = task.get("platformVersion") or "LATEST"
        parsed = _version(version)
        if version == "LATEST" or parsed is None or parsed >= MIN_FARGATE_PLATFORM:
            return Check("Platform version", "green", f"Fargate platform {version} supports ECS Exec.")
        return Check("Platform version", "red", f"Fargate platform {version} is older than 1.4.0.",
                     "Use platform version 1.4.0 or LATEST and redeploy.")
    if f.ecs_agent_version:
        parsed = _version(f.ecs_agent_version)
        if parsed is not None and parsed >= MIN_ECS_AGENT:
            return Check("ECS agent version", "green", f"ECS agent {f.ecs_agent_version} supports ECS Exec.")
        return Check("ECS agent version", "red", f"ECS agent {f.ecs_agent_version} is older than 1.50.2.",
                     "Update the ECS agent (or the ECS-optimized AMI) on the container instances.")
    return Check("Platform version", "yellow", "could not tell the platform or ECS agent version.",
                 "Make sure Fargate tasks use platform 1.4.0+ and EC2 instances ECS agent 1.50.2+.")


def _container_definition_checks(f: DoctorFacts, td: dict[str, Any]) -> Iterator[Check]:
    containers = [c for c in td.get("containerDefinitions", []) if not f.container or c.get("name") == f.container]
    no_init = [c["name"] for c in containers if not (c.get("linuxParameters") or {}).get("initProcessEnabled")]
    if no_init:
        yield Check("initProcessEnabled", "yellow", f"off for {', '.join(no_init)}.",
                    "Set linuxParameters.initProcessEnabled=true so exec sessions do not leave zombie processes.")
    else:
        yield Check("initProcessEnabled", "green", "on.")
    readonly = [c["name"] for c in containers if c.get("readonlyRootFilesystem")]
    if readonly:
        yield Check("Read-only root filesystem", "red", f"on for {', '.join(readonly)}: the SSM agent cannot "
                    "write its files there.", "Set readonlyRootFilesystem=false for the containers you exec into.")
    else:
        yield Check("Read-only root filesystem", "green", "off.")
    overriding = sorted({f"{c['name']}:{e['name']}" for c in containers for e in c.get("environment", [])
                         if e.get("name") in CREDENTIAL_VARIABLES})
    if overriding:
        yield Check("AWS credentials in the environment", "yellow",
                    f"{', '.join(overriding)} override the task role for the SSM agent.",
                    "Remove them from the task definition (use the task role instead).")
    else:
        yield Check("AWS credentials in the environment", "green", "none that would override the task role.")


def _role_check(f: DoctorFacts, td: dict[str, Any]) -> Check:
    role = td.get("taskRoleArn")
    if not role:
        return Check("Task role", "red", "the task definition has no task role.",
                     "Add a task role that allows ssmmessages:CreateControlChannel, CreateDataChannel, "
                     "OpenControlChannel and OpenDataChannel.")
    if f.role_decisions is None:
        return Check("Task role", "yellow", f"could not simulate {role}: {f.role_error or 'unknown error'}.",
                     "Allow the bot iam:SimulatePrincipalPolicy, or check the role's ssmmessages:* permissions by hand.")
    denied = [a for a in SSMMESSAGES_ACTIONS if f.role_decisions.get(a) != "allowed"]
    if denied:
        return Check("Task role", "red", f"{role} is not allowed {', '.join(denied)}.",
                     "Add those ssmmessages actions (Resource \"*\") to the task role's policy.")
    return Check("Task role", "green", f"{role.rsplit('/', 1)[-1]} allows ssmmessages:*.")


def _kms_check(f: DoctorFacts) -> Check:
    if not f.cluster_kms_key:
        return Check("KMS encryption", "green", "the cluster has no exec KMS key (sessions use TLS only).")
    decision = (f.role_decisions or {}).get("kms:Decrypt")
    if f.role_decisions is not None and decision != "allowed":
        return Check("KMS encryption", "red", f"the task role may not kms:Decrypt with {f.cluster_kms_key}.",
                     "Allow kms:Decrypt on that key for the task role (and kms:GenerateDataKey for the bot).")
    return Check("KMS encryption", "green" if decision == "allowed" else "yellow",
                 f"sessions are encrypted with {f.cluster_kms_key}.",
                 "The bot needs kms:GenerateDataKey and the task role kms:Decrypt on that key.")


def _network_check(f: DoctorFacts) -> Check:
    n = f.network
    region = f.region or "<region>"
    fix = (f"Add an interface VPC endpoint com.amazonaws.{region}.ssmmessages to the task's VPC, or a NAT "
           "gateway route (0.0.0.0/0) for its subnets.")
    if n is None or n.mode != "awsvpc":
        mode = n.mode if n else "unknown"
        return Check("Route to ssmmessages", "yellow", f"network mode {mode}: the host's route is not checked.",
                     f"Make sure the host reaches ssmmessages.{region}.amazonaws.com.")
    if n.error:
        return Check("Route to ssmmessages", "yellow", f"could not check: {n.error}.", fix)
    if n.ssmmessages_endpoint:
        return Check("Route to ssmmessages", "green", f"VPC endpoint for ssmmessages in {n.vpc_id}.")
    if n.default_route == "nat":
        return Check("Route to ssmmessages", "green", f"subnet {n.subnet_id} reaches it through a NAT gateway.")
    if n.default_route == "igw" and n.public_ip:
        return Check("Route to ssmmessages", "green", f"subnet {n.subnet_id} reaches it through an internet "
                                                      "gateway with a public IP.")
    if n.default_route == "igw":
        return Check("Route to ssmmessages", "red",
                     f"subnet {n.subnet_id} has an internet gateway but the task has no public IP.",
                     f"Enable assignPublicIp on the service. {fix}")
    return Check("Route to ssmmessages", "red", f"subnet {n.subnet_id} has no ssmmessages endpoint and no "
                                                "default route.", fix)


def _pid_mode_check(td: dict[str, Any]) -> Check:
    mode = td.get("pidMode")
    if mode == "task":
        return Check("pidMode", "yellow", "task: containers share one PID namespace, and ECS Exec then works in "
                     "only one of them (which one is not deterministic).",
                     "Remove pidMode from the task definition if you need exec in every container "
                     "(aws/containers-roadmap#2268).")
    return Check("pidMode", "green", f"{mode or 'private per container'}.")


def _version(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in text.lstrip("v").split(".")[:3])
    except ValueError:
        return None
