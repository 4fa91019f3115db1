"""`ecs-exec-bot exec` streaming a large output to stdout: throughput and the CLI process's peak RSS.

    python -m benchmarks.cli_exec_stream --mb 1024

Local ECS (patched moto) and the local agent run in this process; the CLI runs as a child, exactly as an
operator runs it, with stdout read here, counted and hashed against the agent's synthetic output. The
target is a flat RSS: under 100 MB whatever the size (the suite checks 64 MiB, tests/cli/test_exec_cli.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import time

MIB = 1 << 20


def peak_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli_exec_stream")
    parser.add_argument("--mb", type=int, default=100, help="MiB of output (default 100)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    from standins.agent import AgentThread
    from standins.agent_output import synthetic_chunk
    from standins.ecs import SANDBOX, LocalEcsServer, seed_demo_cluster

    total = args.mb * MIB
    region = "us-east-1"
    with AgentThread() as agent, LocalEcsServer(agent_url=agent.http_url) as ecs:
        SANDBOX.agent_url = agent.http_url
        seed_demo_cluster(ecs.url, region=region)
        SANDBOX.session_options = {"synthetic_output_bytes": total}
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": region, "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
               "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        env |= {f"AWS_ENDPOINT_URL_{s}": ecs.url for s in ("ECS", "IAM", "EC2", "STS")}
        env |= {f"AWS_ENDPOINT_URL_{s}": agent.http_url for s in ("SSM", "KMS")}
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bot", "exec", "web-nginx", "--cluster", "prod",
                                 "--timeout", "1190", "--", "out"], env=env, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        sha, count, peak = hashlib.sha256(), 0, 0
        while chunk := proc.stdout.read(1 << 16):
            sha.update(chunk)
            count += len(chunk)
            peak = max(peak, peak_rss_kb(proc.pid))
        code = proc.wait()
        elapsed = time.perf_counter() - started
        child_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    expected, i = hashlib.sha256(), 0
    while chunk := synthetic_chunk(i, total):
        expected.update(chunk)
        i += 1
    print(f"output: {count / MIB:.1f} MiB ({'sha256 matches' if sha.digest() == expected.digest() else 'MISMATCH'})")
    print(f"exit status: {code}")
    print(f"wall time: {elapsed:.1f} s ({count / MIB / elapsed:.1f} MiB/s, agent and CLI on this machine)")
    print(f"CLI CPU: {child_cpu.ru_utime + child_cpu.ru_stime:.1f} s")
    print(f"CLI peak RSS: {peak / 1024:.1f} MiB")
    return 0 if code == 0 and count == total and sha.digest() == expected.digest() else 1


if __name__ == "__main__":
    sys.exit(main())
