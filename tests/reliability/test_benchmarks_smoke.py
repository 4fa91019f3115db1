"""Every benchmark still runs: each is started with ``--quick`` (concurrently, each in its own process,
as ``python -m benchmarks`` does) and must print its figures as ``key: number`` lines. No figure is
compared with anything: tests never assert times."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURE = re.compile(r"^([a-z0-9_]+): (-?[0-9]+(?:\.[0-9]+)?)$")

EXPECTED: dict[tuple[str, ...], set[str]] = {
    ("benchmarks.ack_latency", "--quick"): {
        "ack_p50_ms_c1", "ack_p99_ms_c1", "ack_p50_ms_c50", "ack_p99_ms_c50", "ack_p50_ms_burst50",
        "ack_p99_ms_burst50", "ack_errors_c1", "ack_errors_c50", "app_cpu_ms_per_command_c50", "ack_results_posted",
        "ack_post_ack_failures", "app_full_gc_count_sustained50", "app_full_gc_ms_longest_sustained50",
    },
    ("benchmarks.concurrent_sessions", "--quick"): {
        "sessions", "sessions_wall_s", "sessions_errors", "client_peak_rss_mib", "client_cpu_s", "client_cpu_ms_per_mib",
    },
    ("benchmarks.policy", "--quick"): {
        "policy_rules", "policy_decision_us_p50", "policy_decision_us_p99", "policy_worst_decision_us_p50",
        "policy_worst_decision_us_p99",
    },
    ("benchmarks.policy", "--quick", "--opcodes"): {
        "policy_opcodes_per_decision_mean", "policy_opcodes_per_decision_p99",
        "policy_typed_opcodes_per_decision_mean", "policy_opcodes_per_decision_mean_denied",
        "policy_typed_opcodes_per_decision_mean_pipe",
    },
    ("benchmarks.data_channel", "--quick"): {
        "client_cpu_ms_per_mib", "frames_per_read", "end_to_end_mib_s", "startup_cpu_ms", "startup_rss_mib",
        "client_peak_rss_mib",
    },
    ("benchmarks.data_channel", "--quick", "--pattern", "batched", "--tls"): {"client_cpu_ms_per_mib", "frames_per_read"},
    ("benchmarks.followups", "--mib", "1"): {
        "kept_mib", "keep_ms", "filter_count_ms", "filter_count_mib_per_s", "filter_regex_tail_ms",
        "filter_hostile_ms", "peak_traced_mib",
    },
    ("benchmarks.live_updates", "--seconds", "5"): {
        "live_runs", "live_chat_update_calls", "live_chat_update_per_s_mean", "live_chat_update_busiest_minute",
        "live_429_answered", "live_messages_ending_with_result",
    },
}


@pytest.mark.timeout(180)
def test_each_benchmark_prints_its_figures() -> None:
    procs = {
        args: subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        for args in EXPECTED
    }
    problems: list[str] = []
    for args, proc in procs.items():
        out, err = proc.communicate(timeout=170)
        lines = out.splitlines()
        figures = {m[1] for line in lines if (m := FIGURE.match(line))}
        if proc.returncode != 0:
            problems.append(f"{' '.join(args)}: exit {proc.returncode}: {err.strip()[-500:]}")
        if missing := EXPECTED[args] - figures:
            problems.append(f"{' '.join(args)}: missing {sorted(missing)}")
        if stray := [line for line in lines if not FIGURE.match(line)]:
            problems.append(f"{' '.join(args)}: not a `key: number` line: {stray[:3]}")
    assert problems == []
