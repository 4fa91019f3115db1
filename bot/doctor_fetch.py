"""The thin AWS side of `doctor`: gather ``DoctorFacts`` for one service (and one task).

Only facts are fetched here; every judgement is in ``bot.doctor``. A fact that cannot be fetched
(IAM simulation denied, EC2 describe calls refused) becomes "could not check" in the report instead of
failing the whole doctor run: a partial checklist is still useful at 3 a.m.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws import AwsClientFactory, AwsClients, aws_call, describe_aws_error, error_message
from bot.config import BotConfig
from bot.doctor import (
    SSMMESSAGES_ACTIONS,
    Check,
    DoctorFacts,
    DoctorReport,
    NetworkFacts,
    build_report,
    probe_check,
)
from bot.errors import BotError
from bot.service_ref import ServiceRef, resolve_service_ref
from bot.targets import (
    describe_service,
    describe_tasks,
    resolve_targets,
    service_tasks,
    task_not_in_service,
)

_SOFT_ERRORS = (ClientError, BotoCoreError)


async def doctor_report(config: BotConfig | None, factory: AwsClientFactory, service: str, *,
                        cluster: str | None = None, task: str | None = None, container: str | None = None,
                        requester: str = "doctor") -> DoctorReport:
    """Resolve the service (alias, or raw with ``cluster``), fetch the facts, build the report."""
    ref = resolve_service_ref(config, service, cluster=cluster)
    clients = await asyncio.to_thread(factory.for_environment, ref.environment, requester)
    return build_report(await gather_facts(clients, ref, task=task, container=container))


PROBE_COMMAND = "true"
PROBE_TIMEOUT_S = 30


async def live_probe(config: BotConfig | None, factory: AwsClientFactory, service: str, *,
                     cluster: str | None = None, task: str | None = None, container: str | None = None,
                     requester: str = "doctor", runner: Any = None) -> Check:
    """Run ``true`` through ECS Exec on the task (as `exec` would pick it) and report the live outcome."""
    from bot.runner import ExecRunner  # the data channel only when a probe is asked for

    ref = resolve_service_ref(config, service, cluster=cluster)
    clients = await asyncio.to_thread(factory.for_environment, ref.environment, requester)
    try:
        [target] = await resolve_targets(clients, ref, task=task, container=container)
    except BotError as exc:
        return probe_check(task_id=task, status="error", error=exc.message, fix=exc.fix)
    runner = runner or ExecRunner(factory.for_environment)
    result = await runner.run(target, PROBE_COMMAND, timeout=PROBE_TIMEOUT_S, requester=requester)
    err = result.error
    return probe_check(task_id=target.task_id, status=result.status, duration_s=result.duration_s,
                       exit_code=result.exit_code, error=err.message if err else None, fix=err.fix if err else None)


async def gather_facts(clients: AwsClients, ref: ServiceRef, *, task: str | None = None,
                       container: str | None = None) -> DoctorFacts:
    ecs = clients.ecs
    service = await describe_service(ecs, ref)
    cluster = service.get("clusterArn", ref.cluster).rsplit("/", 1)[-1]
    tasks = await service_tasks(ecs, ref.cluster, ref.service)
    chosen: dict[str, Any] | None = None
    if task:
        chosen = next((t for t in tasks if task in (t["taskArn"], t["taskArn"].rsplit("/", 1)[-1])), None)
        if chosen is None:
            found = await describe_tasks(ecs, ref.cluster, [task])
            if not found:
                raise await task_not_in_service(ecs, ref, task)
            chosen = found[0]  # a stopped task is still worth a report
    elif tasks:
        chosen = tasks[0]

    td_arn = (chosen or {}).get("taskDefinitionArn") or service.get("taskDefinition")
    task_definition = None
    if td_arn:
        task_definition = (await _ecs(ecs.describe_task_definition, "ecs:DescribeTaskDefinition", td_arn,
                                      taskDefinition=td_arn))["taskDefinition"]
    clusters = (await _ecs(ecs.describe_clusters, "ecs:DescribeClusters", cluster, clusters=[ref.cluster]))
    cluster_info = (clusters.get("clusters") or [{}])[0]
    kms_key = ((cluster_info.get("configuration") or {}).get("executeCommandConfiguration") or {}).get("kmsKeyId")

    decisions, role_error = await _simulate_role(clients, (task_definition or {}).get("taskRoleArn"), kms_key)
    return DoctorFacts(
        service_name=ref.name,
        cluster=cluster,
        region=clients.region,
        service=service,
        task=chosen,
        running_tasks=len(tasks),
        task_definition=task_definition,
        container=container or ref.container,
        cluster_kms_key=kms_key,
        ecs_agent_version=await _ecs_agent_version(ecs, ref.cluster, chosen),
        role_decisions=decisions,
        role_error=role_error,
        network=await _network(clients, service, chosen, task_definition),
    )


async def _ecs(fn: Any, action: str, resource: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return await aws_call(fn, **kwargs)
    except _SOFT_ERRORS as exc:
        raise describe_aws_error(exc, action=action, resource=resource) from None


async def _simulate_role(clients: AwsClients, role_arn: str | None,
                         kms_key: str | None) -> tuple[dict[str, str] | None, str | None]:
    if not role_arn:
        return None, None
    actions = [*SSMMESSAGES_ACTIONS, *(["kms:Decrypt"] if kms_key else [])]
    extra: dict[str, Any] = {"ResourceArns": [kms_key]} if kms_key else {}
    try:
        resp = await aws_call(clients.iam.simulate_principal_policy, PolicySourceArn=role_arn,
                              ActionNames=actions, **extra)
    except _SOFT_ERRORS as exc:
        return None, error_message(exc).rstrip(".")
    return {r["EvalActionName"]: r["EvalDecision"] for r in resp.get("EvaluationResults", [])}, None


async def _ecs_agent_version(ecs: Any, cluster: str, task: dict[str, Any] | None) -> str | None:
    arn = (task or {}).get("containerInstanceArn")
    if not arn:
        return None
    try:
        resp = await aws_call(ecs.describe_container_instances, cluster=cluster, containerInstances=[arn])
    except _SOFT_ERRORS:
        return None
    instances = resp.get("containerInstances") or [{}]
    return (instances[0].get("versionInfo") or {}).get("agentVersion")


async def _network(clients: AwsClients, service: dict[str, Any], task: dict[str, Any] | None,
                   task_definition: dict[str, Any] | None) -> NetworkFacts:
    mode = (task_definition or {}).get("networkMode", "bridge")
    if mode != "awsvpc":
        return NetworkFacts(mode=mode)
    awsvpc = (service.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    subnet = _attachment_detail(task, "subnetId") or next(iter(awsvpc.get("subnets") or []), None)
    public_ip = awsvpc.get("assignPublicIp") == "ENABLED"
    if not subnet:
        return NetworkFacts(mode=mode, error="no subnet found on the task or the service")
    ec2 = clients.ec2
    try:
        subnets = await aws_call(ec2.describe_subnets, SubnetIds=[subnet])
        vpc_id = subnets["Subnets"][0]["VpcId"]
        endpoints = await aws_call(ec2.describe_vpc_endpoints, Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "service-name", "Values": [f"com.amazonaws.{clients.region}.ssmmessages"]},
        ])
        has_endpoint = any(e.get("State", "").lower() in ("available", "pending")
                           for e in endpoints.get("VpcEndpoints", []))
        route = "none"
        if not has_endpoint:
            route = await _default_route(ec2, subnet, vpc_id)
    except _SOFT_ERRORS as exc:
        return NetworkFacts(mode=mode, subnet_id=subnet, error=error_message(exc).rstrip("."))
    return NetworkFacts(mode=mode, subnet_id=subnet, vpc_id=vpc_id, ssmmessages_endpoint=has_endpoint,
                        default_route=route, public_ip=public_ip)  # type: ignore[arg-type]


async def _default_route(ec2: Any, subnet: str, vpc_id: str) -> str:
    tables = (await aws_call(ec2.describe_route_tables, Filters=[
        {"Name": "association.subnet-id", "Values": [subnet]}])).get("RouteTables", [])
    if not tables:  # subnets without an explicit association use the VPC's main route table
        tables = (await aws_call(ec2.describe_route_tables, Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}])
        ).get("RouteTables", [])
    for table in tables:
        for r in table.get("Routes", []):
            if r.get("DestinationCidrBlock") != "0.0.0.0/0" or r.get("State") == "blackhole":
                continue
            if r.get("NatGatewayId") or r.get("TransitGatewayId") or r.get("NetworkInterfaceId"):
                return "nat"
            if str(r.get("GatewayId", "")).startswith("igw-"):
                return "igw"
    return "none"


def _attachment_detail(task: dict[str, Any] | None, name: str) -> str | None:
    for attachment in (task or {}).get("attachments", []):
        for detail in attachment.get("details", []):
            if detail.get("name") == name:
                return detail.get("value")
    return None
