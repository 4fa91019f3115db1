"""Run every benchmark in its own process and print one table of figures.

Each benchmark is a module of this package that prints ``key: value`` lines; running them as separate
processes keeps their CPU and RSS figures independent of each other.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time

# (module, arguments, what it measures)
BENCHMARKS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("benchmarks.data_channel", ("--pattern", "paced"), "data channel, paced like the agent, 8 MiB"),
    ("benchmarks.data_channel", ("--pattern", "paced", "--tls"), "data channel, paced, over TLS"),
    ("benchmarks.data_channel", ("--pattern", "batched"), "data channel, batched, 50 MiB"),
    ("benchmarks.cli_exec_stream", ("--mb", "100"), "exec CLI streaming 100 MiB to stdout"),
    ("benchmarks.ack_latency", (), "slash-command ack latency over signed HTTP"),
    ("benchmarks.concurrent_sessions", (), "200 concurrent paced sessions x 100 KiB"),
    ("benchmarks.policy", (), "policy decisions with 1,000 rules"),
    ("benchmarks.redaction", (), "redaction throughput"),
    ("benchmarks.live_updates", (), "20 concurrent live runs x 60 s, chat.update rate-limited"),
    ("benchmarks.followups", (), "follow-up filters on an 8 MiB kept output"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", help="run only benchmarks whose module name contains this text")
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()} · {platform.processor() or 'cpu'} · python {platform.python_version()}")
    failed = 0
    for module, extra, title in BENCHMARKS:
        if args.only and args.only not in module:
            continue
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", module, *extra], capture_output=True, text=True, timeout=900, check=False
        )
        print(f"\n## {title}  ({module} {' '.join(extra)}, {time.perf_counter() - started:.1f} s)")
        figures = [line for line in proc.stdout.splitlines() if ": " in line]
        for line in figures:
            key, _, value = line.partition(": ")
            print(f"  {key:<32} {value}")
        if proc.returncode != 0:
            failed += 1
            print(f"  FAILED (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
