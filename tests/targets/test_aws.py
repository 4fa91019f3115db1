from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from bot.aws import RETRY_CONFIG, AwsClientFactory, AwsClients, aws_call, describe_aws_error, iam_safe_name
from bot.config import EnvironmentConfig
from bot.errors import AwsError


def client_error(code: str, message: str = "boom", op: str = "DescribeTasks") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


class Flaky:
    def __init__(self, failures: list[str]) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.failures:
            raise client_error(self.failures.pop(0))
        return {"ok": kwargs}


async def test_throttling_is_retried_with_bounded_backoff() -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    fn = Flaky(["ThrottlingException", "TooManyRequestsException"])
    assert await aws_call(fn, cluster="c", sleep=sleep, base_delay=1.0, max_delay=1.5) == {"ok": {"cluster": "c"}}
    assert fn.calls == 3
    assert len(delays) == 2 and all(0 <= d <= 1.5 for d in delays)


async def test_throttling_gives_up_after_the_attempts_and_says_so() -> None:
    async def sleep(seconds: float) -> None:
        return None

    fn = Flaky(["ThrottlingException"] * 10)
    with pytest.raises(ClientError) as info:
        await aws_call(fn, attempts=3, sleep=sleep)
    assert fn.calls == 3
    text = describe_aws_error(info.value, action="ecs:DescribeTasks", resource="cluster prod").user_text()
    assert "AWS kept throttling ecs:DescribeTasks after several retries." in text


async def test_other_errors_are_not_retried() -> None:
    fn = Flaky(["InvalidParameterException", "InvalidParameterException"])
    with pytest.raises(ClientError):
        await aws_call(fn)
    assert fn.calls == 1


def test_clients_use_botocore_adaptive_retries() -> None:
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    retries = AwsClients(session).ecs.meta.config.retries
    assert retries["mode"] == "adaptive"
    assert RETRY_CONFIG.retries is not None and RETRY_CONFIG.retries["mode"] == "adaptive"


@pytest.mark.parametrize(("exc", "expected"), [
    (client_error("AccessDeniedException",
                  "User: arn:aws:sts::1:assumed-role/bot/x is not authorized to perform: ecs:ListTasks on "
                  "resource: arn:aws:ecs:us-east-1:1:container-instance/prod/* because no identity-based policy"),
     "AWS denied ecs:ListTasks on arn:aws:ecs:us-east-1:1:container-instance/prod/*."),
    (client_error("AccessDenied", "Access denied"), "AWS denied ecs:DescribeTasks on cluster prod."),
    (client_error("ExpiredTokenException", "expired"), "rejected the bot's credentials"),
    (NoCredentialsError(), "No AWS credentials were found."),
    (client_error("ServerException", "kaput"), "ecs:DescribeTasks on cluster prod failed: ServerException: kaput."),
])
def test_aws_errors_become_one_sentence_with_a_fix(exc: Exception, expected: str) -> None:
    err = describe_aws_error(exc, action="ecs:DescribeTasks", resource="cluster prod")
    assert isinstance(err, AwsError)
    assert expected in err.user_text()
    assert err.fix


def test_iam_safe_names() -> None:
    assert iam_safe_name("U0ALICE") == "U0ALICE"
    assert iam_safe_name("alice smith/ops") == "alice_smith_ops"
    assert iam_safe_name("x") == "x_"
    assert len(iam_safe_name("u" * 100, prefix="ecs-exec-bot-")) == 64


class FakeSts:
    def __init__(self, calls: list[dict[str, Any]], deny: bool) -> None:
        self.calls = calls
        self.deny = deny

    def assume_role(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.deny:
            raise client_error("AccessDenied", "not authorized to perform: sts:AssumeRole", "AssumeRole")
        return {"Credentials": {"AccessKeyId": "AK", "SecretAccessKey": "SK", "SessionToken": "ST",
                                "Expiration": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)}}


class FakeSession:
    def __init__(self, calls: list[dict[str, Any]], deny: bool = False, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.region_name = kwargs.get("region_name")
        self._sts = FakeSts(calls, deny)

    def client(self, name: str, **kwargs: Any) -> Any:
        assert name == "sts"
        return self._sts


def factory(calls: list[dict[str, Any]], *, deny: bool = False, now: float = 0.0) -> AwsClientFactory:
    envs = {"prod": EnvironmentConfig(region="eu-west-1", role_arn="arn:aws:iam::111122223333:role/bot"),
            "dev": EnvironmentConfig(region="us-west-2")}
    return AwsClientFactory(envs, default_region="us-east-1",
                            session_factory=lambda **kw: FakeSession(calls, deny, **kw), clock=lambda: now)


def test_role_is_assumed_with_the_requester_as_source_identity() -> None:
    calls: list[dict[str, Any]] = []
    f = factory(calls)
    clients = f.for_environment("prod", "U0ALICE")
    assert calls == [{"RoleArn": "arn:aws:iam::111122223333:role/bot", "RoleSessionName": "ecs-exec-bot-U0ALICE",
                      "SourceIdentity": "U0ALICE", "DurationSeconds": 3600}]
    assert clients.session.kwargs == {"aws_access_key_id": "AK", "aws_secret_access_key": "SK",
                                      "aws_session_token": "ST", "region_name": "eu-west-1"}
    assert f.for_environment("prod", "U0ALICE") is clients  # cached until shortly before expiry
    f.for_environment("prod", "U0BOB")
    assert [c["SourceIdentity"] for c in calls] == ["U0ALICE", "U0BOB"]


def test_environment_without_role_and_raw_default() -> None:
    calls: list[dict[str, Any]] = []
    f = factory(calls)
    assert f.for_environment("dev", "U0ALICE").region == "us-west-2"
    assert f.for_environment("default", None).region == "us-east-1"
    assert calls == []


def test_refused_assume_role_says_which_trust_policy_to_fix() -> None:
    with pytest.raises(AwsError) as info:
        factory([], deny=True).for_environment("prod", "U0ALICE")
    assert "cannot assume arn:aws:iam::111122223333:role/bot" in info.value.user_text()
    assert "sts:SetSourceIdentity" in info.value.user_text()
