"""doctor: each rule on plain facts (no AWS), then the whole command against the patched moto server."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bot.cli import main
from bot.config import parse_config
from bot.doctor import SSMMESSAGES_ACTIONS, Check, DoctorFacts, NetworkFacts, build_report, run_doctor
from standins.ecs import DemoCluster, ServiceSpec, set_agent_status
from tests.support.local_aws import LocalAws

TASK = {
    "taskArn": "arn:aws:ecs:us-east-1:1:task/prod/abc123",
    "launchType": "FARGATE",
    "platformVersion": "1.4.0",
    "enableExecuteCommand": True,
    "containers": [{"name": "app", "managedAgents": [{"name": "ExecuteCommandAgent", "lastStatus": "RUNNING"}]}],
}
TD = {
    "taskRoleArn": "arn:aws:iam::1:role/task",
    "networkMode": "awsvpc",
    "containerDefinitions": [{"name": "app", "linuxParameters": {"initProcessEnabled": True}}],
}
GOOD = DoctorFacts(
    service_name="web", cluster="prod", region="us-east-1",
    service={"serviceName": "web-nginx", "enableExecuteCommand": True},
    task=TASK, running_tasks=1, task_definition=TD,
    role_decisions={a: "allowed" for a in SSMMESSAGES_ACTIONS},
    network=NetworkFacts(mode="awsvpc", subnet_id="subnet-1", vpc_id="vpc-1", ssmmessages_endpoint=True),
)


def check(facts: DoctorFacts, name: str) -> Check:
    matches = [c for c in build_report(facts).checks if c.name == name]
    assert len(matches) == 1, [c.name for c in build_report(facts).checks]
    return matches[0]


def with_container(**changes: Any) -> DoctorFacts:
    return replace(GOOD, task_definition={**TD, "containerDefinitions": [{**TD["containerDefinitions"][0], **changes}]})


def test_all_green() -> None:
    report = build_report(GOOD)
    assert report.worst == "green" and report.ok
    assert report.render_text().endswith("ECS Exec should work.\n")


@pytest.mark.parametrize(("facts", "name", "status", "words"), [
    (replace(GOOD, service={"serviceName": "web-nginx", "enableExecuteCommand": False}), "Exec on the service",
     "red", "--service web-nginx --enable-execute-command --force-new-deployment"),
    (replace(GOOD, task=None, running_tasks=0), "Running task", "red", "no RUNNING task"),
    (replace(GOOD, task={**TASK, "enableExecuteCommand": False}), "Exec on the task", "red", "started without exec"),
    (replace(GOOD, task={**TASK, "containers": [{"name": "app", "managedAgents": [
        {"name": "ExecuteCommandAgent", "lastStatus": "STOPPED", "reason": "no route"}]}]}), "Agent in app",
     "red", "STOPPED (no route)"),
    (replace(GOOD, task={**TASK, "containers": [{"name": "app", "managedAgents": [
        {"name": "ExecuteCommandAgent", "lastStatus": "PENDING"}]}]}), "Agent in app", "yellow", "still starting"),
    (replace(GOOD, task={**TASK, "containers": [{"name": "app"}]}), "Agent in app", "red", "no ExecuteCommandAgent"),
    (replace(GOOD, task={**TASK, "platformVersion": "1.3.0"}), "Platform version", "red", "older than 1.4.0"),
    (replace(GOOD, task={**TASK, "launchType": "EC2", "platformVersion": None}, ecs_agent_version="1.49.0"),
     "ECS agent version", "red", "older than 1.50.2"),
    (replace(GOOD, task={**TASK, "launchType": "EC2", "platformVersion": None}, ecs_agent_version="1.80.0"),
     "ECS agent version", "green", "supports ECS Exec"),
    (with_container(linuxParameters={}), "initProcessEnabled", "yellow", "off for app"),
    (with_container(readonlyRootFilesystem=True), "Read-only root filesystem", "red", "on for app"),
    (with_container(environment=[{"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}]),
     "AWS credentials in the environment", "yellow", "app:AWS_SECRET_ACCESS_KEY override the task role"),
    (replace(GOOD, task_definition={**TD, "taskRoleArn": None}), "Task role", "red", "no task role"),
    (replace(GOOD, role_decisions={**GOOD.role_decisions, "ssmmessages:OpenDataChannel": "implicitDeny"}),  # type: ignore[dict-item]
     "Task role", "red", "not allowed ssmmessages:OpenDataChannel"),
    (replace(GOOD, role_decisions=None, role_error="AccessDenied"), "Task role", "yellow", "could not simulate"),
    (replace(GOOD, cluster_kms_key="arn:k"), "KMS encryption", "red", "may not kms:Decrypt with arn:k"),
    (replace(GOOD, cluster_kms_key="arn:k", role_decisions={**GOOD.role_decisions, "kms:Decrypt": "allowed"}),  # type: ignore[dict-item]
     "KMS encryption", "green", "encrypted with arn:k"),
    (replace(GOOD, network=NetworkFacts(mode="awsvpc", subnet_id="subnet-1", ssmmessages_endpoint=False,
                                        default_route="nat")), "Route to ssmmessages", "green", "NAT gateway"),
    (replace(GOOD, network=NetworkFacts(mode="awsvpc", subnet_id="subnet-1", ssmmessages_endpoint=False,
                                        default_route="igw", public_ip=False)),
     "Route to ssmmessages", "red", "no public IP"),
    (replace(GOOD, network=NetworkFacts(mode="awsvpc", subnet_id="subnet-1", ssmmessages_endpoint=False,
                                        default_route="none")),
     "Route to ssmmessages", "red", "com.amazonaws.us-east-1.ssmmessages"),
    (replace(GOOD, network=NetworkFacts(mode="bridge")), "Route to ssmmessages", "yellow", "network mode bridge"),
    (replace(GOOD, task_definition={**TD, "pidMode": "task"}), "pidMode", "yellow", "only one of them"),
])
def test_each_rule(facts: DoctorFacts, name: str, status: str, words: str) -> None:
    c = check(facts, name)
    assert c.status == status
    assert words in f"{c.detail} {c.fix}"
    if status != "green":
        assert c.fix  # every problem says what to do


def test_report_text_shows_fixes_only_for_problems() -> None:
    facts = replace(GOOD, task_definition={**TD, "pidMode": "task"})
    text = build_report(facts).render_text()
    assert text.count("   fix: ") == 1
    assert "🟡 pidMode" in text and text.endswith("ECS Exec should work; see the warnings.\n")


# --------------------------------------------------------------------------------- against moto


def test_doctor_cli_green_on_the_demo(shared_aws: LocalAws, shared_demo: DemoCluster,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--cluster", "prod", "web-nginx"]) == 0
    out = capsys.readouterr().out
    assert "🔴" not in out and "🟡" not in out
    assert "Agent in nginx: ExecuteCommandAgent is RUNNING." in out
    assert "Task role: prod-task-role allows ssmmessages:*." in out


def test_doctor_cli_finds_every_red_item(local_aws: LocalAws, capsys: pytest.CaptureFixture[str]) -> None:
    demo = local_aws.seed(
        services=(ServiceSpec("bad", readonly_root=True, init_process=False,
                              environment={"AWS_ACCESS_KEY_ID": "x"}),),
        task_role_allows_ssmmessages=False, vpc_endpoint=False,
        kms_key_id="arn:aws:kms:us-east-1:123456789012:key/k",
    )
    set_agent_status(demo.services["bad"].task_ids[0], "STOPPED")
    assert main(["doctor", "--cluster", "prod", "bad", "--task", demo.services["bad"].task_ids[0]]) == 1
    out = capsys.readouterr().out
    for line in ("🔴 Agent in app", "🟡 initProcessEnabled", "🔴 Read-only root filesystem",
                 "🟡 AWS credentials in the environment", "🔴 Task role", "🔴 KMS encryption",
                 "🔴 Route to ssmmessages"):
        assert line in out


def test_doctor_cli_unknown_service(shared_aws: LocalAws, shared_demo: DemoCluster,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--cluster", "prod", "api-svc"]) == 69
    assert "Unknown service 'api-svc' in cluster prod" in capsys.readouterr().err


async def test_run_doctor_for_the_slack_handler(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    config = parse_config("environments: {prod: {}}\n"
                          "services:\n  web: {environment: prod, cluster: prod, service: web-nginx}\n")
    report = await run_doctor(config, shared_aws.factory(config.environments), "web")
    assert report.ok
    assert str(report).startswith("doctor: service web-nginx · cluster prod · task ")
