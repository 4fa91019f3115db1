"""`ecs-exec-bot exec` as a Unix tool: whole output streamed in bounded memory, options anywhere, 64 for
usage errors, 141 on a closed pipe, --redact, short task ids."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from standins.agent_output import synthetic_chunk
from standins.ecs import SANDBOX, DemoCluster
from tests.support.local_aws import LocalAws

STREAM_BYTES = 64 * 1024 * 1024  # the suite's size; benchmarks/bench_cli_exec_stream.py runs 1 GiB
RSS_LIMIT_KB = 100 * 1024


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["exec", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def expected_synthetic(total: int) -> tuple[int, str]:
    """Byte count and SHA-256 of the agent's synthetic output (plain ASCII lines: cleaning keeps it as is)."""
    sha, n, i = hashlib.sha256(), 0, 0
    while chunk := synthetic_chunk(i, total):
        sha.update(chunk)
        n += len(chunk)
        i += 1
    return n, sha.hexdigest()


@pytest.mark.timeout(300)
def test_the_whole_output_streams_to_stdout_in_bounded_memory(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    SANDBOX.session_options = {"synthetic_output_bytes": STREAM_BYTES}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "exec", "web-nginx", "--cluster", "prod", "--timeout", "5m", "--", "out"],
        env={**os.environ, **shared_aws.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    sha, count, peak_kb = hashlib.sha256(), 0, 0
    while chunk := proc.stdout.read(1 << 16):
        sha.update(chunk)
        count += len(chunk)
        peak_kb = max(peak_kb, rss_high_water_kb(proc.pid))
    err = proc.stderr.read().decode()
    assert proc.wait() == 0, err
    assert (count, sha.hexdigest()) == expected_synthetic(STREAM_BYTES)
    print(f"exec streamed {count / 2**20:.0f} MiB with peak RSS {peak_kb / 1024:.1f} MiB")
    assert 0 < peak_kb < RSS_LIMIT_KB


def rss_high_water_kb(pid: int) -> int:
    """The process's peak RSS so far (VmHWM). Unlike wait4's ru_maxrss it starts afresh at exec, so the
    pytest process the child was forked from does not count."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def test_output_is_never_cut_in_the_middle(shared_aws: LocalAws, shared_demo: DemoCluster,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "web-nginx", "--cluster", "prod", "--", "seq", "1", "200000")
    assert (code, err) == (0, "")
    assert out == "".join(f"{i}\n" for i in range(1, 200001))


@pytest.mark.timeout(60)
def test_a_closed_pipe_exits_141_quietly_and_stops_the_command(shared_aws: LocalAws,
                                                                shared_demo: DemoCluster) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "exec", "web-nginx", "--cluster", "prod", "--", "seq", "1", "100000000"],
        env={**os.environ, **shared_aws.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"1\n" and proc.stdout.readline() == b"2\n"  # `| head -2`
    proc.stdout.close()
    assert proc.wait(timeout=45) == 141  # the remote seq would run for minutes: it was interrupted
    assert proc.stderr.read() == b""


def test_options_after_the_service_without_dashdash_and_a_short_task_id(
        shared_aws: LocalAws, shared_demo: DemoCluster, capsys: pytest.CaptureFixture[str]) -> None:
    task = shared_demo.services["web-nginx"].task_ids[1]
    code, out, err = run_cli(capsys, "web-nginx", "--cluster", "prod", "--task", task[:8], "--timeout", "5m",
                             "echo", "picked")
    assert (code, out, err) == (0, "picked\n", "")
    assert SANDBOX.requests[-1]["task"].endswith(task)
    # 5m = 300 s; the remote command kills itself 15 s after the bot's own deadline if the session is lost
    assert "timeout -s KILL 315 sh -c" in SANDBOX.requests[-1]["command"]
    short = f"{task[:6]}…{task[-2:]}"  # as the bot shows it in Slack
    code, out, _ = run_cli(capsys, "web-nginx", "--cluster", "prod", f"--task={short}", "--", "echo", "again")
    assert (code, out) == (0, "again\n") and SANDBOX.requests[-1]["task"].endswith(task)


@pytest.mark.parametrize(("argv", "message"), [
    (("web-nginx", "--cluster", "prod", "--tsk", "abc", "tail", "x"), "Unknown option '--tsk' before the command."),
    (("web-nginx", "--cluster", "prod", "--timeout", "0", "--", "true"), "--timeout must be between 1 and 1190"),
    (("web-nginx", "--cluster", "prod", "--timeout", "20m", "true"), "--timeout must be between 1 and 1190"),
    (("web-nginx", "--cluster", "prod", "--timeout", "soon", "true"), "is not a number of seconds"),
    (("--all-tasks", "web-nginx", "--cluster", "prod", "--task", "abcdef12", "true"),
     "Use either `--task` or `--all-tasks`, not both."),
    (("web-nginx", "--cluster", "prod", "--task"), "Argument --task: expected one argument."),
    ((), "The following arguments are required: SERVICE"),
])
def test_usage_errors_exit_64_and_run_nothing(shared_aws: LocalAws, shared_demo: DemoCluster,
                                              capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                                              message: str) -> None:
    before = len(SANDBOX.requests)
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (64, "")
    assert err.count("\n") == 1 and message in err, err
    assert len(SANDBOX.requests) == before


def test_redact_applies_the_config_redaction(shared_aws: LocalAws, shared_demo: DemoCluster,
                                             capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "bot.yaml"
    cfg.write_text("environments: {prod: {}}\n"
                   "services:\n  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx}\n"
                   "policy:\n  rules: []\n  redact:\n    - {name: internal-token, pattern: 'itk_[A-Za-z0-9]{32}'}\n")
    token = "itk_" + "Q" * 32
    code, out, _ = run_cli(capsys, "--config", str(cfg), "web", "--redact", "--", "echo", f"key={token}")
    assert code == 0 and token not in out and "[redacted:internal-token]" in out
    code, out, _ = run_cli(capsys, "--config", str(cfg), "web", "--", "echo", f"key={token}")
    assert code == 0 and out == f"key={token}\n"
