"""Everything the demo's bot talks to, started on 127.0.0.1 and stopped (with its temp dir) on exit.

- a temporary copy of ``stand-ins/standins/data/demo/task`` (the tasks' "filesystem": the agent's working dir,
  and the root of container paths such as /var/log/nginx/access.log);
- the local agent (`standins.agent.AgentThread`): data channel + SSM/KMS APIs;
- the local ECS API (`standins.demo.local_ecs`, a child process) with the demo cluster seeded;
- the Slack Web API stand-in (FakeSlack), which records every call the bot makes.

`StandIns.open()` starts them, the slow one first (moto's start-up in the child) so that it overlaps the
rest and the bot's own start-up; `wait_for_ecs()` then waits for it. `close()` stops each one even if
another fails, and removes the temp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.configprovider import ConstantProvider

from bot.errors import BotError
from standins.demo.slack_payloads import APP_ID, TEAM_ID
from standins.fake_slack import FakeSlack

log = logging.getLogger("ecs_exec_standins.demo")

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
CONFIG_PATH = DATA_DIR / "ecs-exec-bot.yaml"
TASK_DIR = DATA_DIR / "task"
REGION = "eu-west-1"
HOST = "127.0.0.1"
ECS_START_TIMEOUT_S = 60.0

# Which stand-in answers which AWS API (what `AWS_ENDPOINT_URL_<SERVICE>` would say).
MOTO_SERVICES = frozenset({"ecs", "ec2", "iam", "sts"})
AGENT_SERVICES = frozenset({"ssm", "kms"})


class DemoError(BotError):
    """A stand-in could not start: the demo cannot run on this machine as it is."""

    kind = "demo"
    exit_status = 70


class _LocalSession(boto3.Session):
    """A boto3 session whose clients go to the stand-ins, whatever the user's AWS environment says.

    Explicit endpoints and dummy credentials, and the user's config/credentials files ignored: the demo
    must never reach (or be redirected by) a real AWS account, and must not depend on AWS_PROFILE.
    """

    def __init__(self, endpoints: dict[str, str], region_name: str | None = None, **_: Any) -> None:
        core = botocore.session.Session()
        core.set_config_variable("config_file", os.devnull)
        core.set_config_variable("credentials_file", os.devnull)
        # No profile at all (an AWS_PROFILE naming a profile of the ignored config file would be an error).
        core.get_component("config_store").set_config_provider("profile", ConstantProvider(None))
        core.set_credentials("demo", "demo")
        super().__init__(botocore_session=core, region_name=region_name or REGION)
        self._endpoints = endpoints

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("endpoint_url", self._endpoints.get(service_name))
        return super().client(service_name, *args, **kwargs)


@dataclass
class StandIns:
    root: Path  # temp dir: task/ (the sandbox) and the bot's SQLite store
    agent: Any = None  # standins.agent.AgentThread
    fake_slack: FakeSlack | None = None
    ecs_url: str = ""
    clusters: dict[str, Any] = field(default_factory=dict)
    _ecs_process: subprocess.Popen[str] | None = None

    @property
    def slack(self) -> FakeSlack:
        if self.fake_slack is None:
            raise RuntimeError("the Slack stand-in is not running")
        return self.fake_slack

    @property
    def sandbox_dir(self) -> Path:
        return self.root / "task"

    @property
    def store_path(self) -> Path:
        return self.root / "bot.sqlite3"

    def session_factory(self) -> Callable[..., boto3.Session]:
        """For `bot.aws.AwsClientFactory`: sessions on the stand-ins' endpoints. The endpoints are read when a
        session is made (at the first request), since the bot is wired before the ECS child is ready."""

        def make(**kwargs: Any) -> boto3.Session:
            endpoints = {s: self.ecs_url for s in MOTO_SERVICES} | {s: self.agent.http_url for s in AGENT_SERVICES}
            return _LocalSession(endpoints, **kwargs)

        return make

    def urls(self) -> dict[str, str]:
        return {
            "Slack Web API stand-in": self.fake_slack.url if self.fake_slack else "",
            "ECS API (moto)": self.ecs_url,
            "agent (SSM data channel)": self.agent.http_url if self.agent else "",
        }

    @classmethod
    async def open(cls) -> StandIns:
        root = Path(tempfile.mkdtemp(prefix="ecs-exec-demo-"))
        stand_ins = cls(root=root)
        try:
            await stand_ins._start()
        except BaseException:
            await stand_ins.close()
            raise
        return stand_ins

    async def _start(self) -> None:
        from standins.agent import AgentThread

        # The ECS child first: its start-up (moto import, seeding) is the slow part; it overlaps the rest.
        self._ecs_process = _spawn_local_ecs(self.root / "local-ecs.log")
        shutil.copytree(TASK_DIR, self.sandbox_dir)
        self.agent = AgentThread(HOST, 0, sandbox_dir=self.sandbox_dir).start()
        assert self._ecs_process.stdin is not None
        try:
            self._ecs_process.stdin.write(self.agent.http_url + "\n")
            self._ecs_process.stdin.flush()
        except OSError:  # the child already died: wait_for_ecs() reports why, from its log
            pass
        self.fake_slack = FakeSlack(team_id=TEAM_ID, app_id=APP_ID).start()

    async def wait_for_ecs(self) -> None:
        """Wait until the ECS child serves (call once, after starting whatever can start meanwhile)."""
        assert self._ecs_process is not None
        try:
            ready = await asyncio.wait_for(
                asyncio.to_thread(_read_ready_line, self._ecs_process, self.root / "local-ecs.log"),
                ECS_START_TIMEOUT_S,
            )
        except TimeoutError:
            raise DemoError(
                f"The local ECS API did not start within {ECS_START_TIMEOUT_S:.0f} s.",
                fix="Check that this machine is not overloaded, then run the demo again.",
            ) from None
        self.ecs_url = ready["url"]
        self.clusters = ready["clusters"]

    async def close(self) -> None:
        """Stop every stand-in (each independently) and remove the temp dir."""
        if self.fake_slack is not None:
            try:
                self.fake_slack.stop()
            except Exception:
                log.exception("could not stop the Slack stand-in")
            self.fake_slack = None
        if self._ecs_process is not None:
            await asyncio.to_thread(_stop_process, self._ecs_process)
            self._ecs_process = None
        if self.agent is not None:
            try:
                await asyncio.to_thread(self.agent.stop)
            except Exception:
                log.exception("could not stop the local agent")
            self.agent = None
        shutil.rmtree(self.root, ignore_errors=True)


def _spawn_local_ecs(log_path: Path) -> subprocess.Popen[str]:
    # The child seeds moto with boto3: none of the user's AWS settings (profile, endpoints, region) apply.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true"}
    # stderr goes to a file, not a pipe nobody reads (a full pipe would block the child).
    with open(log_path, "w", encoding="utf-8") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "standins.demo.local_ecs", "--region", REGION],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            # Its own session: Ctrl-C in the terminal reaches the demo only, which closes the child's stdin.
            start_new_session=True,
        )


def _read_ready_line(process: subprocess.Popen[str], log_path: Path) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        stderr = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
        last = (stderr.strip().splitlines() or [f"exit status {process.returncode}"])[-1]
        raise DemoError(
            f"The local ECS API did not start ({last}).",
            fix="Reinstall the demo's dependencies with `pip install -e ./stand-ins` (or `make demo`).",
        )
    return json.loads(line)


def _stop_process(process: subprocess.Popen[str], timeout: float = 5.0) -> None:
    """Close its stdin (its signal to exit); terminate, then kill, if it does not go in time."""
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(OSError):
        if process.stdout is not None:
            process.stdout.close()
