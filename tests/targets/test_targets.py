"""Target resolution against patched moto in server mode (real HTTP, real botocore parsing)."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from bot.errors import TargetError
from bot.service_ref import ServiceRef, resolve_service_ref
from bot.targets import resolve_targets
from standins.ecs import DemoCluster, ServiceSpec, set_agent_status, set_task_status
from tests.support.local_aws import LocalAws

CATALOGUE = parse_config("""
environments: {prod: {region: us-east-1}}
services:
  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx}
  api: {environment: prod, cluster: prod, service: api, shell: false, timeout: 30}
""")


def raw(service: str, cluster: str = "prod") -> ServiceRef:
    return resolve_service_ref(None, service, cluster=cluster)


async def fails(local_aws: LocalAws, ref: ServiceRef, **kwargs: object) -> str:
    with pytest.raises(TargetError) as info:
        await resolve_targets(local_aws.clients(), ref, **kwargs)  # type: ignore[arg-type]
    return info.value.user_text()


async def test_default_target_is_a_running_task_with_the_first_essential_container(
        shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    [target] = await resolve_targets(shared_aws.clients(), raw("web-nginx"))
    assert target.task_id in shared_demo.services["web-nginx"].task_ids
    assert target.container == "nginx"  # two containers: the essential one, not the sidecar
    assert target.cluster == "prod" and target.service == "web-nginx" and target.shell
    assert target.runtime_id
    assert target.ssm_target == f"ecs:prod_{target.task_id}_{target.runtime_id}"


async def test_catalogue_alias_gives_environment_container_and_options(
        shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    ref = resolve_service_ref(CATALOGUE, "api")
    assert (ref.environment, ref.cluster, ref.service, ref.shell, ref.timeout) == ("prod", "prod", "api", False, 30)
    [target] = await resolve_targets(shared_aws.clients(), ref)
    assert target.environment == "prod" and target.container == "app" and target.shell is False


async def test_task_by_id_or_arn_and_explicit_container(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    svc = shared_demo.services["web-nginx"]
    clients = shared_aws.clients()
    [by_id] = await resolve_targets(clients, raw("web-nginx"), task=svc.task_ids[1], container="log-router")
    [by_arn] = await resolve_targets(clients, raw("web-nginx"), task=svc.task_arns[1])
    assert by_id.task_arn == by_arn.task_arn == svc.task_arns[1]
    assert by_id.container == "log-router"


async def test_all_tasks_gives_only_this_services_tasks(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    # moto's list_tasks(serviceName=...) returns all 6 tasks of the cluster; the group check keeps ours.
    targets = await resolve_targets(shared_aws.clients(), raw("api"), all_tasks=True)
    assert sorted(t.task_id for t in targets) == sorted(shared_demo.services["api"].task_ids)


async def test_fan_out_cap(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    text = await fails(shared_aws, raw("api"), all_tasks=True, cap=2)
    assert "has 3 running tasks, more than the fan-out cap of 2" in text
    assert "--task" in text


async def test_unknown_service_suggests_close_matches(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    text = await fails(shared_aws, raw("web-ngnix"))
    assert "Unknown service 'web-ngnix' in cluster prod (did you mean web-nginx?)" in text


def test_unknown_alias_suggests_close_matches() -> None:
    with pytest.raises(TargetError) as info:
        resolve_service_ref(CATALOGUE, "wbe")
    assert "Unknown service 'wbe' (did you mean web?)" in info.value.user_text()
    assert "--cluster" in info.value.user_text()


async def test_unknown_cluster_suggests_close_matches(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    text = await fails(shared_aws, raw("web-nginx", cluster="prd"))
    assert "Unknown cluster 'prd' (did you mean prod?)" in text


async def test_exec_not_enabled_gives_the_update_service_command(
        shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    text = await fails(shared_aws, raw("legacy-batch"))
    assert "ECS Exec is not enabled on task" in text
    assert ("aws ecs update-service --cluster prod --service legacy-batch --enable-execute-command "
            "--force-new-deployment") in text


@pytest.mark.parametrize(("status", "words"), [
    ("STOPPED", "ExecuteCommandAgent in container nginx of task {tid} is STOPPED"),
    ("PENDING", "is still starting. Wait a few seconds and retry."),
])
async def test_agent_not_running(local_aws: LocalAws, demo_cluster: DemoCluster, status: str, words: str) -> None:
    tid = demo_cluster.services["web-nginx"].task_ids[0]
    set_agent_status(tid, status, container="nginx")
    text = await fails(local_aws, raw("web-nginx"), task=tid)
    assert words.format(tid=tid) in text


async def test_default_skips_a_task_whose_agent_is_down(local_aws: LocalAws, demo_cluster: DemoCluster) -> None:
    first, second = demo_cluster.services["web-nginx"].task_ids
    set_agent_status(first, "STOPPED")
    [target] = await resolve_targets(local_aws.clients(), raw("web-nginx"))
    assert target.task_id == second
    # ...but fan-out refuses rather than silently running on fewer tasks than asked
    assert "is STOPPED" in await fails(local_aws, raw("web-nginx"), all_tasks=True)


async def test_no_running_task(local_aws: LocalAws) -> None:
    local_aws.seed(services=(ServiceSpec("idle", tasks=0),))
    text = await fails(local_aws, raw("idle"))
    assert "Service idle in cluster prod has no RUNNING task." in text


async def test_stopped_task_and_task_of_another_service(local_aws: LocalAws, demo_cluster: DemoCluster) -> None:
    web = demo_cluster.services["web-nginx"].task_ids
    api = demo_cluster.services["api"].task_ids
    set_task_status(web[0], "STOPPED")
    assert f"Task {web[0]} is STOPPED, not RUNNING" in await fails(local_aws, raw("web-nginx"), task=web[0])
    assert f"Task {api[0]} belongs to service:api, not service web-nginx" in await fails(
        local_aws, raw("web-nginx"), task=api[0])
    assert "No task 'nope' in cluster prod" in await fails(local_aws, raw("web-nginx"), task="nope")


async def test_unknown_container(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    text = await fails(shared_aws, raw("web-nginx"), container="php")
    assert "has no container named 'php' (it has: nginx, log-router)" in text


def test_a_task_is_named_by_arn_id_unique_prefix_or_the_short_id_slack_shows() -> None:
    from bot.errors import TargetError
    from bot.targets import match_task

    tasks = [{"taskArn": f"arn:aws:ecs:us-east-1:1:task/prod/{tid}"} for tid in
             ("3f2a9c00aa11e1", "3f2a9c00bb22e2", "77aa0000cc33e3")]
    assert match_task(tasks, "77aa0000cc33e3") == [tasks[2]]
    assert match_task(tasks, tasks[0]["taskArn"]) == [tasks[0]]
    assert match_task(tasks, "77aa00") == [tasks[2]]
    assert match_task(tasks, "3f2a9c…e2") == [tasks[1]]  # short_task_id() of bot.output.render
    assert match_task(tasks, "77aa0") == []  # too short to be taken as a prefix
    assert match_task(tasks, "999999") == []
    with pytest.raises(TargetError) as caught:
        match_task(tasks, "3f2a9c00")
    assert "matches 2 running tasks" in caught.value.message and caught.value.fix


def test_slack_accepts_the_short_task_id_it_shows() -> None:
    from bot.commands import parse_command_text

    assert parse_command_text("--task 3f2a9c…e2 web echo hi").task == "3f2a9c…e2"
