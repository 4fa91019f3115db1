"""A missing region, an unknown profile, missing or expired credentials: one line and a distinct status."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, ProfileNotFound

from bot.aws import AwsClientFactory, check_environments, describe_aws_error, describe_setup_error
from bot.config import parse_config
from bot.errors import AwsCredentialsError, ConfigError
from tests.cli.support import clean_env, cli, one_line
from tests.support.local_aws import LocalAws

NO_REGION = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_CONFIG_FILE": os.devnull,
             "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.mark.parametrize("args", [
    ("exec", "web", "--cluster", "prod", "--", "true"),
    ("doctor", "web", "--cluster", "prod"),
])
def test_no_region_is_one_line_and_78(args: tuple[str, ...]) -> None:
    done = cli(*args, env=clean_env(NO_REGION))
    assert done.returncode == 78
    assert "No AWS region is configured" in one_line(done) and "AWS_REGION" in one_line(done)


def test_audit_on_dynamodb_without_region_is_one_line_and_78() -> None:
    env = clean_env(NO_REGION | {"ECS_EXEC_BOT_STORE": "dynamodb", "ECS_EXEC_BOT_DYNAMODB_TABLE": "audit"})
    done = cli("audit", env=env)
    assert done.returncode == 78
    assert "No AWS region is configured" in one_line(done)


def test_unknown_profile_is_one_line_and_78(tmp_path: Path) -> None:
    env = clean_env(NO_REGION | {"AWS_REGION": "eu-west-1", "AWS_PROFILE": "nosuch"})
    done = cli("exec", "web", "--cluster", "prod", "--", "true", env=env)
    assert done.returncode == 78
    assert one_line(done).startswith("ecs-exec-bot: The AWS profile 'nosuch' does not exist.")


def test_missing_credentials_are_one_line_and_77(shared_aws: LocalAws) -> None:
    env = clean_env(shared_aws.env, drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
    done = cli("exec", "web-nginx", "--cluster", "prod", "--", "true", env=env)
    assert done.returncode == 77
    assert "No AWS credentials were found" in one_line(done)


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"])
def test_expired_or_rejected_credentials_are_a_credentials_error(code: str) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "The security token included in the request is expired"}},
                      "DescribeServices")
    err = describe_aws_error(exc, action="ecs:DescribeServices", resource="service web")
    assert isinstance(err, AwsCredentialsError) and err.exit_status == 77
    assert code in err.message and "Refresh the credentials" in (err.fix or "")


def test_setup_errors_have_one_owner() -> None:
    assert isinstance(describe_setup_error(NoRegionError()), ConfigError)
    assert isinstance(describe_setup_error(ProfileNotFound(profile="p")), ConfigError)
    assert isinstance(describe_setup_error(NoCredentialsError()), AwsCredentialsError)
    assert describe_setup_error(ValueError("not aws")) is None
    # The generic mapping defers to it, so both paths say the same sentence.
    assert describe_aws_error(NoRegionError(), action="a", resource="r").user_text() == \
        describe_setup_error(NoRegionError()).user_text()  # type: ignore[union-attr]


CONFIG = """
environments:
  prod: {region: us-east-1}
  staging: {}
  other: {region: eu-west-1, role_arn: "arn:aws:iam::111122223333:role/exec"}
services:
  web: {environment: prod, cluster: prod, service: web-nginx}
"""


def test_check_environments_refuses_an_environment_without_region() -> None:
    config = parse_config(CONFIG)
    factory = AwsClientFactory(config.environments, session_factory=_FakeSession)
    with pytest.raises(ConfigError) as caught:
        check_environments(config, factory)
    assert caught.value.exit_status == 78
    assert caught.value.message == "No AWS region is configured for environment staging."
    assert "environments.staging" in (caught.value.fix or "")


def test_check_environments_assumes_each_role_and_refuses_when_it_cannot() -> None:
    config = parse_config(CONFIG.replace("  staging: {}\n", ""))
    factory = AwsClientFactory(config.environments, session_factory=_FakeSession)
    with pytest.raises(ConfigError) as caught:
        check_environments(config, factory)
    assert caught.value.exit_status == 78
    assert caught.value.message == "The bot cannot assume arn:aws:iam::111122223333:role/exec for environment other."


def test_check_environments_passes_when_every_environment_works() -> None:
    config = parse_config(CONFIG.replace("  staging: {}\n", "").replace(
        '  other: {region: eu-west-1, role_arn: "arn:aws:iam::111122223333:role/exec"}\n', ""))
    check_environments(config, AwsClientFactory(config.environments, session_factory=_FakeSession))


class _FakeSession:
    """A boto3.Session stand-in: a region only when given one; AssumeRole is denied."""

    def __init__(self, region_name: str | None = None, **_: object) -> None:
        self.region_name = region_name

    def client(self, service: str, **_: object) -> object:
        assert service == "sts"
        return _DeniedSts()


class _DeniedSts:
    def assume_role(self, **kwargs: object) -> dict[str, object]:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform sts:AssumeRole"}},
                          "AssumeRole")
