"""The bot's ECS service and task definition: settings names the code reads, secrets from Secrets Manager,
read-only root, non-root user, the Dockerfile's health probe, HTTPS-only egress, no public IP by default,
a deployment circuit breaker, and Slack's Socket Mode connection limit."""

from __future__ import annotations

import re

import pytest

from tests.infra import dockerfile as df
from tests.infra.settings_names import settings_env_names
from tests.infra.terraform import REPO, all_modules

MODULES = all_modules()
BOT = MODULES["bot"]
RESOURCES = BOT.typed("resource")
LOCALS = BOT.locals()
VARIABLES = BOT.labelled("variable")
SERVICE = RESOURCES[("aws_ecs_service", "bot")]
TASK_DEF = RESOURCES[("aws_ecs_task_definition", "bot")]
CONTAINERS = {c["name"]: c for c in LOCALS["container_definitions"]}
FINAL_STAGE = df.parse((REPO / "Dockerfile").read_text())[-1]


def test_environment_and_secret_names_are_ones_the_settings_read() -> None:
    known = settings_env_names()
    assert {"SLACK_BOT_TOKEN", "ECS_EXEC_BOT_STORE", "PORT"} <= known, "alias introspection works"
    text = BOT.text()
    used = set(re.findall(r"\b(ECS_EXEC_BOT_[A-Z_]+|SLACK_[A-Z_]+)\b", text))
    assert used - {"ECS_EXEC_BOT_CONFIG_YAML"} <= known, f"unknown: {used - known}"
    env_expr = LOCALS["bot_environment"]
    for name in ("ECS_EXEC_BOT_STORE", "ECS_EXEC_BOT_DYNAMODB_TABLE", "ECS_EXEC_BOT_CONFIG", "AWS_REGION"):
        assert name in env_expr
    assert 'ECS_EXEC_BOT_STORE = "dynamodb"' in env_expr, "several replicas need the shared store"


def test_slack_tokens_come_from_secrets_manager_per_mode() -> None:
    assert LOCALS["slack_secret_keys"] == (
        '${var.slack_mode == "socket" ? ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"] : '
        '["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]}'
    )
    bot = CONTAINERS["bot"]
    assert "valueFrom" in bot["secrets"] and "local.slack_secret_arn" in bot["secrets"]
    assert "SLACK" not in LOCALS["bot_environment"], "no token in plain environment variables"
    secret = RESOURCES[("aws_secretsmanager_secret", "slack")]
    assert "secret_string" not in secret, "values are put out of band, never in Terraform state"
    assert not any(t == "aws_secretsmanager_secret_version" for t, _ in RESOURCES)


def test_containers_run_read_only_as_the_images_numeric_user() -> None:
    (user,) = [i.args for i in FINAL_STAGE.all("USER")]
    assert LOCALS["container_user"] == user
    for container in CONTAINERS.values():
        assert container["readonlyRootFilesystem"] is True
        assert container["user"] == "${local.container_user}"


def test_writable_mounts_are_the_images_volumes() -> None:
    (volume,) = FINAL_STAGE.all("VOLUME")
    image_volumes = set(volume.exec_form() or [])
    assert LOCALS["config_dir"] in image_volumes
    declared = {v["name"] for v in TASK_DEF["volume"]}
    for container in CONTAINERS.values():
        for mount in container["mountPoints"]:
            assert mount["sourceVolume"] in declared
            path = (
                LOCALS["config_dir"]
                if mount["containerPath"] == "${local.config_dir}"
                else mount["containerPath"]
            )
            assert path in image_volumes, f"{path} is not a VOLUME owned by the runtime user"
    assert LOCALS["config_path"].startswith(LOCALS["config_dir"] + "/")


def test_config_is_written_by_an_init_container_the_bot_waits_for() -> None:
    config, bot = CONTAINERS["config"], CONTAINERS["bot"]
    assert config["essential"] is False and config["entryPoint"] == ["python", "-c"]
    assert bot["dependsOn"] == [{"containerName": "config", "condition": "SUCCESS"}]
    (read_only_config,) = [m for m in bot["mountPoints"] if m["sourceVolume"] == "config"]
    assert read_only_config["readOnly"] is True
    code = LOCALS["write_config"].replace("${local.config_path}", LOCALS["config_path"])
    compile(code, "<write_config>", "exec")
    assert "ECS_EXEC_BOT_CONFIG_YAML" in code


def test_health_check_is_the_dockerfile_probe() -> None:
    (health,) = FINAL_STAGE.all("HEALTHCHECK")
    dockerfile_code = df.healthcheck_argv(health)[2]
    bot = CONTAINERS["bot"]
    assert bot["healthCheck"]["command"] == ["CMD", "python", "-c", "${local.health_probe}"]
    assert LOCALS["health_probe"] == dockerfile_code
    assert bot["command"] == [i.exec_form() for i in FINAL_STAGE.all("CMD")][0]
    assert bot["stopTimeout"] == 120, "Fargate's maximum, for the SIGTERM drain"


def test_service_has_circuit_breaker_no_public_ip_and_no_exec_into_itself() -> None:
    assert SERVICE["deployment_circuit_breaker"] == [{"enable": True, "rollback": True}]
    (network,) = SERVICE["network_configuration"]
    assert network["assign_public_ip"] == "${var.assign_public_ip}"
    assert VARIABLES["assign_public_ip"]["default"] is False
    assert SERVICE["enable_execute_command"] is False
    assert SERVICE["deployment_minimum_healthy_percent"] == 100
    assert TASK_DEF["network_mode"] == "awsvpc" and TASK_DEF["requires_compatibilities"] == ["FARGATE"]


def test_socket_mode_stays_within_slacks_ten_connections() -> None:
    (lifecycle,) = SERVICE["lifecycle"]
    conditions = [p["condition"] for p in lifecycle["precondition"]]
    max_percent = SERVICE["deployment_maximum_percent"]
    assert max_percent == 200
    assert '${var.slack_mode != "socket" || var.desired_count * 2 <= 10}' in conditions


def test_security_group_allows_only_https_out() -> None:
    egress = [body for (t, _), body in RESOURCES.items() if t == "aws_vpc_security_group_egress_rule"]
    assert egress and all(
        (e["ip_protocol"], e["from_port"], e["to_port"]) == ("tcp", 443, 443) for e in egress
    )
    ingress = [body for (t, _), body in RESOURCES.items() if t == "aws_vpc_security_group_ingress_rule"]
    assert all("referenced_security_group_id" in i and "cidr_ipv4" not in i for i in ingress)
    sg = RESOURCES[("aws_security_group", "bot")]
    assert "ingress" not in sg and "egress" not in sg, "rules only as separate resources"


def test_log_group_has_retention() -> None:
    logs = RESOURCES[("aws_cloudwatch_log_group", "bot")]
    assert logs["retention_in_days"] == "${var.log_retention_days}"
    assert isinstance(VARIABLES["log_retention_days"]["default"], int)


@pytest.mark.parametrize("module", ["target-service"])
def test_target_service_enables_exec_and_propagates_tags(module: str) -> None:
    service = MODULES[module].typed("resource")[("aws_ecs_service", "this")]
    assert service["enable_execute_command"] is True
    assert service["propagate_tags"] == "SERVICE"
    assert "var.exec_tags" in service["tags"]
    outputs = MODULES[module].labelled("output")
    assert outputs["exec_linux_parameters"]["value"] == {"initProcessEnabled": True}


@pytest.mark.parametrize(
    ("image", "is_ecr"),
    [
        ("111122223333.dkr.ecr.us-east-1.amazonaws.com/ecs-exec-bot@sha256:" + "0" * 64, True),
        ("public.ecr.aws/acme/ecs-exec-bot:1.0", False),
        ("ghcr.io/acme/ecs-exec-bot:1.0", False),
    ],
)
def test_an_ecr_image_requires_the_repository_arn(image: str, is_ecr: bool) -> None:
    (lifecycle,) = TASK_DEF["lifecycle"]
    (pre,) = lifecycle["precondition"]
    assert pre["condition"].startswith("${var.ecr_repository_arn != null || !can(regex(")
    match = re.search(r'regex\("(.+?)", var\.image\)', pre["condition"])
    assert match is not None
    # HCL string escapes (\\ -> \) as python-hcl2 leaves them, then the regex as Terraform (RE2) sees it.
    pattern = match.group(1).replace("\\\\", "\\")
    assert bool(re.search(pattern, image)) is is_ecr
