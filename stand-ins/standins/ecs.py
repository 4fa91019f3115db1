"""A local ECS/IAM stand-in: moto 5.2 (server mode) patched to cover what ECS Exec needs.

moto 5.2.x lacks `ExecuteCommand`, drops `enableExecuteCommand`, has no `managedAgents`/`runtimeId`
on containers, builds a single container per task, advances task state on every `DescribeTasks` and has
no `iam:SimulatePrincipalPolicy`. ``install_patches``
fills those gaps *inside moto's own response classes*, so every boto3 client pointed at a
``ThreadedMotoServer`` (this process or a subprocess bot) sees real response shapes and real errors.

`ExecuteCommand` registers a session with the project's local agent (`stand-ins/standins/agent.py`) over its
HTTP control API and returns the agent's stream URL and token, exactly like ECS returns the SSM
session. Nothing here is imported by the production path; the demo and the tests use it.

moto is pinned to 5.2.x in pyproject.toml because these patches touch its internals.
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

EXEC_NOT_ENABLED = (
    "The execute command failed because execute command was not enabled when the task was run or the "
    "execute command agent isn't running. Wait and try again or run a new task with execute command "
    "enabled and try again."
)
TARGET_NOT_CONNECTED = "The execute command failed due to an internal error. Try again later."
AGENT_NAME = "ExecuteCommandAgent"


@dataclass
class ExecSandbox:
    """Process-wide settings of the patched `ExecuteCommand`.

    It is process-wide because moto's backends and response classes are; tests reset it between runs.
    """

    agent_url: str | None = None
    deny_execute_command: set[str] = field(default_factory=set)  # task ids, or "*" for every task
    session_options: dict[str, Any] = field(default_factory=dict)  # extra SessionSpec fields, e.g. faults
    # Per task id, extra SessionSpec fields on top (e.g. {"cwd": dir}: a task whose files differ from the rest).
    task_session_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)  # every ExecuteCommand seen, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.deny_execute_command.clear()
            self.session_options.clear()
            self.task_session_options.clear()
            self.requests.clear()


SANDBOX = ExecSandbox()
_installed = False
_install_lock = threading.Lock()


def install_patches() -> ExecSandbox:
    """Patch moto once per process (idempotent) and pin ECS tasks to RUNNING."""
    global _installed
    with _install_lock:
        if not _installed:
            _patch_ecs()
            _patch_iam()
            _installed = True
        pin_task_state()
    return SANDBOX


def pin_task_state() -> None:
    # moto advances a task one state per DescribeTasks (RUNNING → … → STOPPED); real tasks stay up.
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})


# --------------------------------------------------------------------------------------------- ECS patch


def _patch_ecs() -> None:
    from moto.ecs import models, responses
    from moto.ecs.exceptions import ECSException, InvalidParameterException

    backend_cls = models.EC2ContainerServiceBackend
    response_cls = responses.EC2ContainerServiceResponse
    original_backend_run_task = backend_cls.run_task
    original_run_task = response_cls.run_task
    original_create_service = response_cls.create_service

    def backend_run_task(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
        tasks = original_backend_run_task(self, *args, **kwargs)
        for task in tasks:
            task_def = self.describe_task_definition(task.task_definition_arn)
            task.containers = [_container(models.Container, task_def, cdef, task) for cdef in
                               task_def.container_definitions]
            task.enable_execute_command = False
            if task.launch_type == "FARGATE" and not task.platform_version:
                task.platform_version = "1.4.0"
        return tasks

    def run_task(self: Any) -> Any:
        result = original_run_task(self)
        enabled = bool(self._get_param("enableExecuteCommand", False))
        for task in result.result["tasks"]:
            task.enable_execute_command = enabled
        return result

    def create_service(self: Any) -> Any:
        result = original_create_service(self)
        result.result["service"].enable_execute_command = bool(self._get_param("enableExecuteCommand", False))
        return result

    class AccessDeniedException(ECSException):
        def __init__(self, message: str) -> None:
            super().__init__("AccessDeniedException", message)

    class TargetNotConnectedException(ECSException):
        def __init__(self) -> None:
            super().__init__("TargetNotConnectedException", TARGET_NOT_CONNECTED)

    def execute_command(self: Any) -> Any:
        from moto.core.responses import ActionResult

        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        task_ref = self._get_param("task")
        container_name = self._get_param("container")
        command = self._get_param("command")
        SANDBOX.requests.append({"cluster": cluster.name, "task": task_ref, "container": container_name,
                                 "command": command})
        if not self._get_param("interactive", False):
            raise InvalidParameterException("Interactive is the only mode supported currently.")
        task = _find_task(backend, cluster.name, task_ref)
        if task is None:
            raise InvalidParameterException("The specified task was not found.")
        if SANDBOX.deny_execute_command & {"*", task.id}:
            raise AccessDeniedException(
                f"User: arn:aws:sts::{backend.account_id}:assumed-role/ecs-exec-stand-ins/standins is not authorized "
                f"to perform: ecs:ExecuteCommand on resource: {task.task_arn} because no identity-based "
                "policy allows the ecs:ExecuteCommand action"
            )
        if task.last_status != "RUNNING":
            raise InvalidParameterException("The execute command failed because the task is not running.")
        if not getattr(task, "enable_execute_command", False):
            raise InvalidParameterException(EXEC_NOT_ENABLED)
        container = _pick_container(task, container_name)
        if container is None:
            raise InvalidParameterException(
                "The container name is not valid." if container_name else
                "Container name must be specified when the task has more than one container."
            )
        agent = next((a for a in getattr(container, "managed_agents", []) if a["name"] == AGENT_NAME), None)
        if agent is None or agent["lastStatus"] != "RUNNING" or not SANDBOX.agent_url:
            raise TargetNotConnectedException()
        kms_key = ((cluster.configuration or {}).get("executeCommandConfiguration") or {}).get("kmsKeyId")
        session_id = f"ecs-execute-command-{secrets.token_hex(9)}"
        spec = {
            "session_id": session_id,
            "command": command,
            "target": f"ecs:{cluster.name}_{task.id}_{container.runtime_id}",
            "kms_key_id": kms_key,
            **SANDBOX.session_options,
            **SANDBOX.task_session_options.get(task.id, {}),
        }
        session = _register_session(SANDBOX.agent_url, spec)
        return ActionResult({
            "clusterArn": cluster.arn,
            "containerArn": container.container_arn,
            "containerName": container.name,
            "interactive": True,
            "session": {
                "sessionId": session.get("sessionId", session_id),
                "streamUrl": session["streamUrl"],
                "tokenValue": session["tokenValue"],
            },
            "taskArn": task.task_arn,
        })

    backend_cls.run_task = backend_run_task
    response_cls.run_task = run_task
    response_cls.create_service = create_service
    response_cls.execute_command = execute_command


def _container(container_cls: type, task_def: Any, cdef: dict[str, Any], task: Any) -> Any:
    """One moto Container per container definition (moto builds only the first), with the agent."""
    container = container_cls(task_def)
    container.name = cdef.get("name")
    container.image = cdef.get("image")
    container.cpu = cdef.get("cpu", 0)
    container.memory = cdef.get("memory")
    container.last_status = "RUNNING"
    container.exitCode = None  # running containers have no exit code
    container.task_arn = task.task_arn
    # Docker's container id: the third part of the KMS target string `ecs:<cluster>_<task>_<runtimeId>`.
    container.runtime_id = f"{task.id.replace('-', '')}-{secrets.randbelow(10**10):010d}"
    container.managed_agents = [{"name": AGENT_NAME, "lastStatus": "RUNNING"}]
    return container


def _find_task(backend: Any, cluster_name: str, ref: str) -> Any:
    for arn, task in backend.tasks.get(cluster_name, {}).items():
        if ref in (arn, task.task_arn, task.id):
            return task
    return None


def _pick_container(task: Any, name: str | None) -> Any:
    if name:
        return next((c for c in task.containers if c.name == name), None)
    return task.containers[0] if len(task.containers) == 1 else None


def _register_session(agent_url: str, spec: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        agent_url.rstrip("/") + "/control/sessions",
        data=json.dumps(spec).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            return json.loads(response.read())
    except (urllib.error.URLError, OSError) as exc:
        # What ECS says when SSM cannot reach the agent.
        from moto.ecs.exceptions import ECSException

        raise ECSException("TargetNotConnectedException", f"{TARGET_NOT_CONNECTED} ({exc})") from None


# --------------------------------------------------------------------------------------------- IAM patch


def _patch_iam() -> None:
    """A small `SimulatePrincipalPolicy` for roles: Allow/Deny statements matched with wildcards.

    Enough for doctor's question ("may this task role call ssmmessages:*?"); conditions are ignored.
    """
    from moto.core.responses import ActionResult
    from moto.iam import responses

    def simulate_principal_policy(self: Any) -> Any:
        role = self.backend.get_role_by_arn(self._get_param("PolicySourceArn"))
        actions = self._get_param("ActionNames", [])
        statements = list(_role_statements(role))
        results = [
            {"EvalActionName": action, "EvalResourceName": "*", "EvalDecision": _decide(statements, action)}
            for action in actions
        ]
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    responses.IamResponse.simulate_principal_policy = simulate_principal_policy


def _role_statements(role: Any) -> Iterator[dict[str, Any]]:
    documents = list(role.policies.values())
    for policy in role.managed_policies.values():
        documents += [v.document for v in policy.versions if v.is_default]
    for doc in documents:
        parsed = json.loads(doc) if isinstance(doc, str) else doc
        statements = parsed.get("Statement", [])
        yield from [statements] if isinstance(statements, dict) else statements


def _decide(statements: list[dict[str, Any]], action: str) -> str:
    decision = "implicitDeny"
    for st in statements:
        patterns = st.get("Action", [])
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns):
            if st.get("Effect") == "Deny":
                return "explicitDeny"
            decision = "allowed"
    return decision


# ---------------------------------------------------------------------------------- in-process controls


def _ecs_backends() -> Iterator[Any]:
    from moto.ecs.models import ecs_backends

    for regions in ecs_backends.values():
        yield from regions.values()


def find_task(task_id: str) -> Any:
    """The moto task model for ``task_id`` (any account/region), for tests that change its state."""
    for backend in _ecs_backends():
        for tasks in backend.tasks.values():
            for task in tasks.values():
                if task.id == task_id:
                    return task
    raise KeyError(task_id)


def set_agent_status(task_id: str, status: str, container: str | None = None) -> None:
    """Set ExecuteCommandAgent's lastStatus (RUNNING, PENDING, STOPPED) on one or all containers."""
    for c in find_task(task_id).containers:
        if container is None or c.name == container:
            c.managed_agents = [{"name": AGENT_NAME, "lastStatus": status}]


def set_task_status(task_id: str, status: str) -> None:
    find_task(task_id).last_status = status


# ------------------------------------------------------------------------------------ server and seeding


class LocalEcsServer:
    """moto in server mode on 127.0.0.1:<free port>, patched; one per process is enough (state is global).

    ``url`` is what `AWS_ENDPOINT_URL_ECS` / `_IAM` / `_EC2` / `_STS` point at.
    """

    def __init__(self, agent_url: str | None = None) -> None:
        self._agent_url = agent_url
        self._server: Any = None
        self.url = ""
        self.generation = 0  # bumped by every reset(), so fixtures can tell whether their seed survived

    def start(self) -> LocalEcsServer:
        import logging

        from moto.server import ThreadedMotoServer

        # werkzeug logs one line per request to stderr; the CLI's stderr is for the user.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        sandbox = install_patches()
        sandbox.agent_url = self._agent_url
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def reset(self) -> None:
        """Forget every cluster/role/task (moto's reset) and the sandbox switches; keep the patches."""
        request = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback only
            pass
        SANDBOX.reset()
        pin_task_state()
        self.generation += 1

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalEcsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    containers: tuple[str, ...] = ("app",)  # the first one is essential; the others are sidecars
    tasks: int = 1
    exec_enabled: bool = True
    init_process: bool = True
    readonly_root: bool = False
    environment: dict[str, str] = field(default_factory=dict)


DEMO_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("web-nginx", containers=("nginx", "log-router"), tasks=2),
    ServiceSpec("api", containers=("app",), tasks=3),
    ServiceSpec("legacy-batch", containers=("batch",), tasks=1, exec_enabled=False),
)


@dataclass(frozen=True)
class DemoService:
    name: str
    containers: tuple[str, ...]
    task_arns: tuple[str, ...]
    exec_enabled: bool

    @property
    def task_ids(self) -> tuple[str, ...]:
        return tuple(arn.rsplit("/", 1)[-1] for arn in self.task_arns)


@dataclass(frozen=True)
class DemoCluster:
    name: str
    arn: str
    region: str
    services: dict[str, DemoService]
    task_role_arn: str
    vpc_id: str
    subnet_id: str


def seed_demo_cluster(
    endpoint_url: str,
    *,
    region: str = "us-east-1",
    cluster: str = "prod",
    services: tuple[ServiceSpec, ...] = DEMO_SERVICES,
    kms_key_id: str | None = None,
    task_role_allows_ssmmessages: bool = True,
    vpc_endpoint: bool = True,
) -> DemoCluster:
    """Create a Fargate cluster with services whose tasks are RUNNING with ECS Exec (as ECS would)."""
    import boto3

    kw = {"endpoint_url": endpoint_url, "region_name": region, "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    ecs, ec2, iam = boto3.client("ecs", **kw), boto3.client("ec2", **kw), boto3.client("iam", **kw)

    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # moto: awsvpc tasks crash without DNS hostnames on the VPC.
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg_id = ec2.create_security_group(GroupName=f"{cluster}-tasks", Description="tasks", VpcId=vpc_id)["GroupId"]
    if vpc_endpoint:
        ec2.create_vpc_endpoint(VpcId=vpc_id, ServiceName=f"com.amazonaws.{region}.ssmmessages",
                                VpcEndpointType="Interface", SubnetIds=[subnet_id])

    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    role = iam.create_role(RoleName=f"{cluster}-task-role", AssumeRolePolicyDocument=trust)["Role"]
    if task_role_allows_ssmmessages:
        iam.put_role_policy(RoleName=role["RoleName"], PolicyName="ecs-exec", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
                "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]}]}))
        if kms_key_id:
            iam.put_role_policy(RoleName=role["RoleName"], PolicyName="ecs-exec-kms", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Resource": "*", "Action": ["kms:Decrypt"]}]}))

    configuration = {}
    if kms_key_id:
        configuration = {"executeCommandConfiguration": {"kmsKeyId": kms_key_id, "logging": "DEFAULT"}}
    cluster_arn = ecs.create_cluster(clusterName=cluster, **({"configuration": configuration} if configuration
                                                             else {}))["cluster"]["clusterArn"]
    network = {"awsvpcConfiguration": {"subnets": [subnet_id], "securityGroups": [sg_id]}}
    seeded: dict[str, DemoService] = {}
    for spec in services:
        containers = [{
            "name": name,
            "image": f"public.ecr.aws/demo/{name}:latest",
            "essential": i == 0,
            "memory": 256,  # moto's run_task needs container-level memory
            "linuxParameters": {"initProcessEnabled": spec.init_process},
            "readonlyRootFilesystem": spec.readonly_root,
            "environment": [{"name": k, "value": v} for k, v in spec.environment.items()],
        } for i, name in enumerate(spec.containers)]
        ecs.register_task_definition(
            family=spec.name, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
            memory="512", taskRoleArn=role["Arn"], containerDefinitions=containers,
        )
        ecs.create_service(cluster=cluster, serviceName=spec.name, taskDefinition=spec.name,
                           desiredCount=spec.tasks, launchType="FARGATE", networkConfiguration=network,
                           enableExecuteCommand=spec.exec_enabled)
        # moto services never launch tasks: start them the way the ECS scheduler would.
        arns: list[str] = []
        if spec.tasks:
            arns = [t["taskArn"] for t in ecs.run_task(
                cluster=cluster, taskDefinition=spec.name, count=spec.tasks, launchType="FARGATE",
                group=f"service:{spec.name}", startedBy="ecs-svc/1234567890123456789",
                networkConfiguration=network, enableExecuteCommand=spec.exec_enabled,
            )["tasks"]]
        seeded[spec.name] = DemoService(spec.name, spec.containers, tuple(arns), spec.exec_enabled)
    return DemoCluster(cluster, cluster_arn, region, seeded, role["Arn"], vpc_id, subnet_id)
