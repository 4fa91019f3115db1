"""`ecs-exec-bot exec` and ExecRunner end to end: patched moto server + local agent + the real data channel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bot.cli import main
from bot.cli.exec import worst_exit_status
from bot.errors import BotError, ExecTimeout, TargetError
from bot.output.capture import CapturedOutput, CaptureLimits
from bot.runner import ExecResult, ExecRunner, StartPolicy
from bot.service_ref import resolve_service_ref
from bot.targets import Target, resolve_targets
from standins.ecs import SANDBOX, DemoCluster, set_agent_status
from tests.support.local_aws import LocalAws

REPO = Path(__file__).resolve().parents[2]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["exec", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def first_target(local_aws: LocalAws, service: str = "web-nginx") -> Target:
    [target] = await resolve_targets(local_aws.clients(), resolve_service_ref(None, service, cluster="prod"))
    return target


def processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(marker in part for part in (p.info["cmdline"] or [])):
                found.append(p)
    return found


async def wait_until(predicate, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


# ------------------------------------------------------------------------------------------ the CLI


def test_exec_prints_output_and_exits_with_the_remote_exit_code(
        shared_aws: LocalAws, shared_demo: DemoCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--cluster", "prod", "web-nginx", "--", "printf 'a\\033[31mb\\033[0m\\n'; exit 7")
    assert (code, out, err) == (7, "ab\n", "")
    assert SANDBOX.requests[-1]["container"] == "nginx"
    assert SANDBOX.requests[-1]["command"].startswith("sh -c ")  # wrapped for the exit code


def test_options_after_service_and_several_words_are_quoted(
        shared_aws: LocalAws, shared_demo: DemoCluster, capsys: pytest.CaptureFixture[str]) -> None:
    task = shared_demo.services["web-nginx"].task_ids[1]
    code, out, _ = run_cli(capsys, "web-nginx", "--cluster", "prod", "--task", task, "--container", "log-router",
                           "--", "echo", "a  b", "$HOME")
    assert (code, out) == (0, "a  b $HOME\n")
    assert SANDBOX.requests[-1]["task"].endswith(task) and SANDBOX.requests[-1]["container"] == "log-router"


def test_exec_with_catalogue_and_no_shell_container(
        shared_aws: LocalAws, shared_demo: DemoCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "bot.yaml"
    cfg.write_text("environments: {prod: {}}\n"
                   "services:\n  api: {environment: prod, cluster: prod, service: api, shell: false}\n")
    code, out, err = run_cli(capsys, "--config", str(cfg), "api", "--", "echo plain argv")
    assert code == 0 and out == "plain argv\n"
    assert "exit status unknown (the container has no shell to report it)" in err
    assert SANDBOX.requests[-1]["command"] == "echo plain argv"  # passed as is: the agent shlex-splits it


def test_fan_out_over_three_tasks(shared_aws: LocalAws, shared_demo: DemoCluster,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--cluster", "prod", "--all-tasks", "api", "--", "echo fan")
    assert code == 0, err
    headers = [line for line in out.splitlines() if line.startswith("=== task ")]
    assert sorted(h.split()[2] for h in headers) == sorted(shared_demo.services["api"].task_ids)
    assert out.count("fan\n") == 3
    assert len(SANDBOX.requests) == 3


def test_exec_failures_are_one_line_with_distinct_statuses(
        shared_aws: LocalAws, shared_demo: DemoCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "--cluster", "prod", "legacy-batch", "--", "true")
    assert code == 69 and out == ""
    assert err.count("\n") == 1 and "--enable-execute-command --force-new-deployment" in err

    code, _, err = run_cli(capsys, "--cluster", "prod", "web-nginx")
    assert code == 64 and "No command given." in err

    code, _, err = run_cli(capsys, "--cluster", "prod", "--timeout", "1200", "web-nginx", "--", "true")
    assert code == 64 and "between 1 and 1190 seconds" in err

    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  web: {cluster: prod, service: web-nginx, timeout: 0}\n")
    code, _, err = run_cli(capsys, "--config", str(bad), "web", "--", "true")
    assert code == 78 and f"{bad}, line 2" in err

    code, _, err = run_cli(capsys, "wbe", "--", "true")
    assert code == 69 and "Unknown service 'wbe'" in err and "--cluster" in err

    code, _, err = run_cli(capsys, "web-nginx", "--cluster", "prod", "--bogus", "--", "true")
    assert code == 64 and "Unknown option '--bogus' before the command." in err


def test_access_denied_names_the_action_and_the_task_arn(
        shared_aws: LocalAws, shared_demo: DemoCluster, capsys: pytest.CaptureFixture[str]) -> None:
    SANDBOX.deny_execute_command.add("*")
    code, out, err = run_cli(capsys, "--cluster", "prod", "api", "--", "true")
    assert code == 69 and out == ""
    assert "AWS denied ecs:ExecuteCommand on arn:aws:ecs:us-east-1:123456789012:task/prod/" in err
    assert "Allow ecs:ExecuteCommand on that resource" in err


def test_a_real_subprocess_run(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **shared_aws.env}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "exec", "--cluster", "prod", "web-nginx", "--", "echo from-subprocess; exit 3"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert (proc.returncode, proc.stdout) == (3, "from-subprocess\n"), proc.stderr


# --------------------------------------------------------------------------------------- the runner


async def test_runner_result_fields(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    target = await first_target(shared_aws)
    started: list[str] = []
    result = await ExecRunner(shared_aws.factory().for_environment).run(
        target, "seq 1 3", timeout=30, requester="U0ALICE", on_started=started.append)
    assert (result.status, result.exit_code, result.text) == ("ok", 0, "1\n2\n3\n")
    assert result.session_id and started == [result.session_id]
    assert result.output.total_bytes == len(b"1\r\n2\r\n3\r\n") and not result.output.truncated
    assert result.target == target and result.command == "seq 1 3" and result.duration_s > 0


async def test_timeout_interrupts_and_the_remote_process_is_gone(
        shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    target = await first_target(shared_aws)
    result = await ExecRunner(shared_aws.factory().for_environment).run(target, "sleep 987.125", timeout=1)
    assert result.status == "timeout" and result.exit_code is None
    assert result.error is not None and "ran longer than 1 s" in result.error.user_text()
    assert result.error.exit_status == 124
    assert await wait_until(lambda: not processes_with("987.125"))


async def test_cancel_ends_a_command_that_ignores_ctrl_c(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    # SIGINT is ignored, so only the second step (ssm:TerminateSession) can end it.
    target = await first_target(shared_aws)
    cancel = asyncio.Event()
    runner = ExecRunner(shared_aws.factory().for_environment, interrupt_grace=0.3)
    running = asyncio.create_task(runner.run(target, "trap '' INT; sleep 987.25; echo survived", timeout=60,
                                             cancel=cancel))
    assert await wait_until(lambda: bool(processes_with("987.25")))
    cancel.set()
    result = await running
    assert result.status == "cancelled"
    assert "survived" not in result.text
    assert await wait_until(lambda: not processes_with("987.25"))


async def test_execute_command_errors_at_the_ecs_call(local_aws: LocalAws, demo_cluster: DemoCluster) -> None:
    slept: list[float] = []

    async def no_wait(seconds: float) -> None:
        slept.append(seconds)

    runner = ExecRunner(local_aws.factory().for_environment, start_policy=StartPolicy(sleep=no_wait))
    target = await first_target(local_aws)

    # Exec disabled on the task (targets would have refused earlier; ECS says it too).
    legacy = demo_cluster.services["legacy-batch"]
    disabled = Target("default", "prod", "legacy-batch", legacy.task_arns[0], legacy.task_ids[0], "batch",
                      None, True)
    result = await runner.run(disabled, "true", timeout=10)
    assert result.status == "error" and result.error is not None
    assert "ECS Exec is not enabled on it or its ExecuteCommandAgent is not running" in result.error.user_text()
    assert "--service legacy-batch --enable-execute-command --force-new-deployment" in result.error.user_text()

    # The agent is not connected: ECS answers TargetNotConnectedException.
    set_agent_status(target.task_id, "STOPPED")
    result = await runner.run(target, "true", timeout=10)
    assert result.error is not None
    text = result.error.user_text()
    assert f"The ExecuteCommandAgent of task {target.task_id} is not connected to SSM (still, after 3 retries" in text
    assert slept == [1.0, 2.0, 4.0]  # retried first: right after a task starts this is usually transient
    assert "ssmmessages:CreateControlChannel" in text and "VPC endpoint" in text and "doctor" in text


async def test_kms_session_uses_the_runtime_id_target(local_aws: LocalAws) -> None:
    local_aws.seed(kms_key_id="arn:aws:kms:us-east-1:123456789012:key/demo")
    target = await first_target(local_aws)
    result = await ExecRunner(local_aws.factory().for_environment).run(target, "echo secret-channel", timeout=30)
    assert (result.status, result.text) == ("ok", "secret-channel\n"), result.error
    assert result.channel is not None and result.channel.encrypted


async def test_long_output_is_bounded_with_head_tail_and_counts(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    target = await first_target(shared_aws)
    limits = CaptureLimits(head_bytes=1024, tail_bytes=1024, file_bytes=4096)
    result = await ExecRunner(shared_aws.factory().for_environment, capture_limits=limits).run(
        target, "seq 1 20000", timeout=30)
    assert (result.status, result.exit_code) == ("ok", 0)
    assert result.output.truncated and result.output.dropped_lines > 19000
    assert result.text.startswith("1\n2\n3\n") and result.text.endswith("19999\n20000\n")
    assert f"··· {result.output.dropped_lines:,} lines (" in result.text
    assert "\r" not in result.text


async def test_channel_closed_with_an_error_is_reported(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    SANDBOX.session_options["faults"] = {"channel_closed_error": "Plugin with name InteractiveCommands not found."}
    target = await first_target(shared_aws)
    result = await ExecRunner(shared_aws.factory().for_environment).run(target, "true", timeout=30)
    assert result.status == "error" and result.error is not None
    assert "Plugin with name InteractiveCommands not found" in result.error.user_text()


def test_worst_exit_status_of_a_fan_out() -> None:
    def fake(status: str, code: int | None, error: BotError | None = None) -> ExecResult:
        target = Target("default", "prod", "api", "arn:t", "t", "app", None, True)
        return ExecResult(target, "cmd", code, status, 0.1, CapturedOutput.from_bytes(b""), None, error)  # type: ignore[arg-type]

    assert worst_exit_status([fake("ok", 0), fake("failed", 2), fake("failed", 5)]) == 5
    assert worst_exit_status([fake("failed", 5), fake("timeout", None, ExecTimeout("t"))]) == 124
    assert worst_exit_status([fake("timeout", None, ExecTimeout("t")), fake("error", None, TargetError("x"))]) == 69
    assert worst_exit_status([fake("ok", None)]) == 0
    assert worst_exit_status([fake("ok", 0), fake("cancelled", None)]) == 130


async def test_cancelling_the_runner_task_ends_the_remote_command(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    target = await first_target(shared_aws)
    running = asyncio.create_task(ExecRunner(shared_aws.factory().for_environment).run(
        target, "sleep 987.375", timeout=60))
    assert await wait_until(lambda: bool(processes_with("987.375")))
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await wait_until(lambda: not processes_with("987.375"))


class StuckChannel:
    """A data channel that never ends, even after TerminateSession: the runner must still return."""

    def __init__(self, params: object, **kwargs: object) -> None:
        self.inputs: list[bytes] = []
        self.terminated = 0

    async def run(self) -> None:
        await asyncio.Event().wait()

    def send_input(self, data: bytes) -> None:
        self.inputs.append(data)

    async def terminate(self) -> None:
        self.terminated += 1


async def test_a_session_that_never_ends_is_abandoned_after_ctrl_c_and_terminate(
        shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    channels: list[StuckChannel] = []

    def factory(params: object, **kwargs: object) -> StuckChannel:
        channels.append(StuckChannel(params, **kwargs))
        return channels[-1]

    runner = ExecRunner(shared_aws.factory().for_environment, interrupt_grace=0.05, terminate_wait=0.05,
                        session_factory=factory)  # type: ignore[arg-type]
    result = await runner.run(await first_target(shared_aws), "true", timeout=0.1)
    assert result.status == "timeout" and result.exit_code is None
    [channel] = channels
    assert channel.inputs == [b"\x03"] and channel.terminated == 1
