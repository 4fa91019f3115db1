"""Data-channel client throughput: stream synthetic output from the local agent, in its own process.

    python -m benchmarks.data_channel --mb 50

The agent (``python -m standins.agent``) runs in a child process so the figures are the client's
alone: CPU time of this process while the session runs, divided by the megabytes (MiB) received. The
budget is 50 ms per MB (the Go plugin spends about 26 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
import urllib.request
from typing import Any

MIB = 1 << 20


def start_agent() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.agent", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"the local agent did not start (printed {url!r})")
    return proc, url


def register(url: str, total_bytes: int) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/control/sessions",
        data=json.dumps({"synthetic_output_bytes": total_bytes}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def stream(url: str, total_bytes: int) -> tuple[float, float, int, int]:
    import boto3

    from bot.ssm.channel import ChannelConfig, DataChannelSession, SessionParams
    from bot.ssm.control import Boto3SessionControl

    ssm = boto3.client(
        "ssm", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    session_info = register(url, total_bytes)
    received = 0

    def on_output(data: bytes) -> None:
        nonlocal received
        received += len(data)

    session = DataChannelSession(
        SessionParams(session_info["sessionId"], session_info["streamUrl"], session_info["tokenValue"]),
        on_output=on_output,
        control=Boto3SessionControl(ssm),
        config=ChannelConfig(),
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = await session.run()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if received != total_bytes or result.missing_messages:
        raise SystemExit(f"incomplete stream: {received} of {total_bytes} bytes")
    return cpu, wall, result.messages_received, received


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_channel", description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="MiB of synthetic output to stream (default 50)")
    args = parser.parse_args(argv)
    total = int(args.mb * MIB)
    proc, url = start_agent()
    try:
        cpu, wall, messages, received = asyncio.run(stream(url, total))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    mb = received / MIB
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"client_cpu_ms_per_mb: {cpu * 1000 / mb:.1f}")
    print(f"end_to_end_mb_s: {mb / wall:.1f}")
    print(f"messages_per_s: {messages / wall:.0f}")
    print(f"client_peak_rss_mb: {peak_rss_mb:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
