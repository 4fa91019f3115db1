"""Local AWS for tests: patched moto (ECS/IAM/EC2/STS) in server mode + the local agent (SSM/KMS + data channel).

Reuse from any test area:

    from tests.support.local_aws import local_aws, local_aws_servers, demo_cluster  # noqa: F401 (fixtures)

    def test_something(local_aws, demo_cluster):
        clients = local_aws.clients()                     # AwsClients on the local endpoints
        subprocess.run([...], env=local_aws.env)          # or a subprocess with the same endpoints

``local_aws_servers`` starts both servers once per session; ``local_aws`` resets moto, points the
standard AWS variables of this process at them (monkeypatch) and hands out helpers; ``demo_cluster``
seeds cluster ``prod`` with services web-nginx (2 tasks, containers nginx + log-router), api (3 tasks)
and legacy-batch (1 task, exec disabled).

``shared_aws`` / ``shared_demo`` are the fast variants for tests that do not change AWS state: the
seeded cluster is reused until some other test resets moto (only the sandbox switches are cleared).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from bot.aws import AwsClientFactory, AwsClients
from standins.agent import AgentThread
from standins.ecs import SANDBOX, DemoCluster, LocalEcsServer, seed_demo_cluster

REGION = "us-east-1"
MOTO_SERVICES = ("ECS", "IAM", "EC2", "STS")
AGENT_SERVICES = ("SSM", "KMS")


@dataclass
class LocalAws:
    ecs_server: LocalEcsServer
    agent: AgentThread
    region: str = REGION

    @property
    def env(self) -> dict[str, str]:
        """The variables that point boto3 (this process or a subprocess) at the local stand-ins."""
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        env |= {f"AWS_ENDPOINT_URL_{s}": self.ecs_server.url for s in MOTO_SERVICES}
        env |= {f"AWS_ENDPOINT_URL_{s}": self.agent.http_url for s in AGENT_SERVICES}
        return env

    def session(self) -> boto3.Session:
        return boto3.Session(region_name=self.region)

    def clients(self, environment: str = "default") -> AwsClients:
        return AwsClients(self.session(), environment=environment)

    def factory(self, environments: dict[str, Any] | None = None) -> AwsClientFactory:
        return AwsClientFactory(environments, default_region=self.region)

    def seed(self, **kwargs: Any) -> DemoCluster:
        return seed_demo_cluster(self.ecs_server.url, region=self.region, **kwargs)


def _use(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """Point this process's AWS variables (and only those) at the local servers for one test."""
    SANDBOX.agent_url = aws.agent.http_url
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    return aws


@pytest.fixture(scope="session")
def local_aws_servers() -> Iterator[tuple[LocalEcsServer, AgentThread]]:
    with AgentThread() as agent, LocalEcsServer(agent_url=agent.http_url) as ecs:
        yield ecs, agent


@pytest.fixture
def local_aws(local_aws_servers: tuple[LocalEcsServer, AgentThread], monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    ecs, agent = local_aws_servers
    ecs.reset()
    return _use(LocalAws(ecs, agent), monkeypatch)


@pytest.fixture
def demo_cluster(local_aws: LocalAws) -> DemoCluster:
    return local_aws.seed()


_shared: dict[str, Any] = {"generation": None, "demo": None}


@pytest.fixture
def shared_aws(local_aws_servers: tuple[LocalEcsServer, AgentThread], monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    ecs, agent = local_aws_servers
    SANDBOX.reset()
    return _use(LocalAws(ecs, agent), monkeypatch)


@pytest.fixture
def shared_demo(shared_aws: LocalAws) -> DemoCluster:
    """The demo cluster, seeded once and reused; tests using it must not change ECS/IAM state."""
    if _shared["generation"] != shared_aws.ecs_server.generation:
        shared_aws.ecs_server.reset()
        _shared["demo"] = shared_aws.seed()
        _shared["generation"] = shared_aws.ecs_server.generation
    return _shared["demo"]
