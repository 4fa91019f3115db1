"""Policy decision time with 1,000 rules: ``bot.policy.evaluate`` on a realistic mix of requests.

    python -m benchmarks.policy [--quick]

The policy has 1,000 rules spread over 200 teams (each rule names one team's user group and a few
users, five commands, one or two services). Two figures:

- ``policy_decision_us_*``: a mix of requests (allowed, refused by pattern, refused shell syntax, a
  stranger in no rule) from users in a few teams — what the slash-command path pays before its ack;
- ``policy_worst_decision_us_*``: a user named in *all* 1,000 rules whose command matches none of
  them, so every rule is checked (the upper bound of one decision);
- ``policy_typed_decision_us_*``: the same mix against the same rules written in the typed forms
  (``{int: …}``, ``{flags: …}``, ``{path: …}``, ``position: filter``).

Pure CPU in this process; no I/O. Times are per decision, in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

RULES = 1000
TEAMS = 200


def team_group(team: int) -> str:
    return f"S{team:08d}"


def typed_commands(n: int) -> list[dict[str, Any]]:
    """The five commands of rule ``n`` in the typed forms."""
    logs = {"path": f"/var/log/app{n}/*", "repeat": True}
    return [
        {"argv": ["cat", logs]},
        {"argv": ["tail", {"seq": ["-n", {"int": {"min": 1, "max": 10000}}], "optional": True}, logs]},
        {"argv": ["grep", {"flags": "-cinv"}, "*", logs]},
        {"argv": ["ls", {"flags": "-la"}, {"path": "/var/log/**", "optional": True}]} if n % 10 == 0
        else {"argv": ["grep", {"flags": "-civ"}, "*"], "position": "filter"},
        {"regex": f"^curl -s http://localhost:{8000 + n % 1000}/health$"},
    ]


def build_policy(rules: int = RULES, *, everyone: str | None = None, typed: bool = False) -> Any:
    """``rules`` rules; with ``everyone`` set, that user is named in every rule (the worst case)."""
    from bot.policy import parse_policy

    data: dict[str, Any] = {"rules": []}
    for n in range(rules):
        team = n % TEAMS
        users = [f"U{team:04d}{k:04d}" for k in range(3)] + ([everyone] if everyone else [])
        data["rules"].append(
            {
                "name": f"team-{team}-rule-{n}",
                "users": users,
                "groups": [team_group(team)],
                # The worst case must reach every rule: no channel limit, every service.
                "channels": [f"C{team:08d}"] if n % 3 == 0 and not everyone else [],
                "services": ["*"] if everyone else [f"svc-{n % 50}", f"svc-{(n + 7) % 50}"],
                "commands": typed_commands(n) if typed else [
                    {"argv": ["cat", f"/var/log/app{n}/*"]},
                    {"argv": ["tail", "-n", "*", f"/var/log/app{n}/*"]},
                    {"argv": ["grep", "*", f"/var/log/app{n}/*"]},
                    {"argv": ["ls", "**"]} if n % 10 == 0 else {"argv": ["ps", "aux"]},
                    {"regex": f"^curl -s http://localhost:{8000 + n % 1000}/health$"},
                ],
                "timeout": 60,
            }
        )
    return parse_policy(data)


def typical_requests() -> list[dict[str, Any]]:
    """One request of each kind for users in a few teams (n picks a rule of that team)."""
    out: list[dict[str, Any]] = []
    for n in (0, 10, 401, 777, 990):
        team = n % TEAMS
        base = {
            "user_id": f"U{team:04d}0001",
            "user_groups": [team_group(team), team_group((team + 1) % TEAMS)],
            "channel_id": f"C{team:08d}",
            "environment": "prod",
        }
        svc = f"svc-{n % 50}"
        out += [
            {**base, "service_alias": svc, "command": f"tail -n 200 /var/log/app{n}/error.log"},
            {**base, "service_alias": svc, "command": f"cat /var/log/app{n}/a.log | grep -c 500"},
            {**base, "service_alias": svc, "command": "cat /etc/shadow"},
            {**base, "service_alias": svc, "command": f"cat /var/log/app{n}/x; rm -rf /"},
            {**base, "service_alias": "svc-unlisted", "command": "ps aux"},
        ]
    out.append({"user_id": "U9STRANGER", "user_groups": [], "channel_id": "C0", "environment": "prod",
                "service_alias": "svc-1", "command": "id"})
    return out


def time_decisions(decide: Callable[[], object], samples: int, *, cpu: bool = False) -> list[float]:
    """Per-call times in µs; a few calls first so imports and caches are not measured. ``cpu``: this
    thread's CPU time instead of wall time (on a shared machine, wall-clock p99 measures the scheduler)."""
    for _ in range(min(50, samples)):
        decide()
    times: list[float] = []
    clock = time.thread_time_ns if cpu else time.perf_counter_ns
    for _ in range(samples):
        start = clock()
        decide()
        times.append((clock() - start) / 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.policy", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    parser.add_argument("--cpu", action="store_true", help="measure thread CPU time, not wall time")
    args = parser.parse_args(argv)
    from bot.policy import evaluate

    samples = 200 if args.quick else 20_000
    started = time.perf_counter()
    policy = build_policy()
    load_ms = (time.perf_counter() - started) * 1000

    requests = typical_requests()
    times: list[float] = []
    per_request = max(1, samples // len(requests))
    for request in requests:
        times += time_decisions(lambda r=request: evaluate(policy, **r), per_request, cpu=args.cpu)  # type: ignore[misc]

    typed_policy = build_policy(typed=True)
    typed_times: list[float] = []
    for request in requests:
        typed_times += time_decisions(lambda r=request: evaluate(typed_policy, **r), per_request, cpu=args.cpu)  # type: ignore[misc]

    worst_policy = build_policy(everyone="U0EVERYWHERE")
    worst = {"user_id": "U0EVERYWHERE", "user_groups": [], "channel_id": "C00000000", "environment": "prod",
             "service_alias": "svc-0", "command": "tail -n 5 /var/log/nowhere/x.log"}
    worst_decision = evaluate(worst_policy, **worst)
    if worst_decision.allowed:  # the worst case must check every rule and refuse
        raise SystemExit("worst-case request was allowed; the benchmark policy is wrong")
    worst_times = time_decisions(lambda: evaluate(worst_policy, **worst), max(20, samples // 100), cpu=args.cpu)

    print(f"policy_rules: {RULES}")
    print(f"policy_load_ms: {load_ms:.0f}")
    print(f"policy_decision_us_p50: {statistics.median(times):.1f}")
    print(f"policy_decision_us_p99: {percentile(times, 0.99):.1f}")
    print(f"policy_worst_decision_us_p50: {statistics.median(worst_times):.0f}")
    print(f"policy_worst_decision_us_p99: {percentile(worst_times, 0.99):.0f}")
    print(f"policy_typed_decision_us_p50: {statistics.median(typed_times):.1f}")
    print(f"policy_typed_decision_us_p99: {percentile(typed_times, 0.99):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
