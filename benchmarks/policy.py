"""Policy decision time with 1,000 rules: ``bot.policy.evaluate`` on a realistic mix of requests.

    python -m benchmarks.policy [--quick] [--cpu] [--opcodes]

The policy has 1,000 rules spread over 200 teams (each rule names one team's user group and a few
users, five commands, one or two services). Three figures:

- ``policy_decision_us_*``: a stream of requests, each different from the last (allowed, refused by
  pattern, refused shell syntax, a service no rule names, a stranger in no rule) from users of every
  team, each evaluated once — what the slash-command path pays before its ack;
- ``policy_worst_decision_us_*``: a user named in *all* 1,000 rules whose commands (a different one
  each time) match none of them, so every rule is checked (the upper bound of one decision);
- ``policy_typed_decision_us_*``: the same stream against the same rules written in the typed forms
  (``{int: …}``, ``{flags: …}``, ``{path: …}``, ``position: filter``);
- ``policy_hostile_word_ms_max``: the slowest of a few requests with a ~4,000-character word against globs
  with many stars and a path with three ``**`` (a backtracking matcher is cubic and worse there), in ms.

Pure CPU in this process; no I/O. Times are per decision, in microseconds. ``--opcodes`` prints, instead
of times, the Python bytecode instructions each decision executes (``policy_[typed_]opcodes_per_decision_*``,
mean and p99 over 2,000 requests of the stream, and the mean per kind of request): a count that does not
move with the machine's load, for A/B comparisons of the code on a noisy VM.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from types import FrameType
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


def hostile_policy() -> Any:
    """One rule whose globs have many stars and whose path has three ``**``: what a backtracking matcher
    takes time on, cubic and worse in the word's length."""
    from bot.policy import parse_policy

    return parse_policy({"rules": [{"name": "stars", "users": ["U0HOSTILE"], "services": ["*"], "commands": [
        {"argv": ["grep", "*a*b*c*d*", "/var/log/*"]},
        {"argv": ["cat", {"path": "/**/a/**/b/**/c"}]},
    ]}]})


def hostile_requests() -> list[dict[str, Any]]:
    """Words of ~4,000 characters (the most a Slack command holds) that almost match those globs."""
    base = {"user_id": "U0HOSTILE", "user_groups": [], "channel_id": "C00000000", "environment": "prod",
            "service_alias": "web"}
    return [{**base, "command": command} for command in (
        "grep " + "ab" * 1_990 + " /var/log/x", "grep " + "abc" * 1_320 + " /var/log/x",
        "cat /" + "a/b/" * 995, "cat /" + "a/b/c/" * 660 + "x",
    )]


def request_stream(count: int, *, seed: int = 7, kinds: list[str] | None = None) -> list[dict[str, Any]]:
    """``count`` requests as they arrive: every one differs from the last (another team, user, service,
    file, number or search term), in a fixed pseudo-random order, so nothing the code might remember
    about the previous command makes the next one cheaper. The mix per 20 requests: 4 single commands a
    rule allows, 4 pipelines (`cat … | grep -c …`: allowed by the typed rules' filter pattern, refused by
    the string rules, which have none), 4 refused by pattern, 3 refused for shell syntax, 3 on a service
    no rule of theirs names, 2 from a stranger in no rule. ``kinds``: gets each request's kind, in order."""
    rng = random.Random(seed)
    mix = ["tail"] * 4 + ["pipe"] * 4 + ["denied"] * 4 + ["syntax"] * 3 + ["unlisted"] * 3 + ["stranger"] * 2
    words = ["error", "timeout", "upstream", "500", "refused", "GET", "panic", "oom", "deadline", "reset"]
    out: list[dict[str, Any]] = []
    for _ in range(count):
        n = rng.randrange(RULES)  # the rule the request is written for
        team = n % TEAMS
        log = f"/var/log/app{n}/{rng.choice(['error', 'access', 'app', 'audit'])}-{rng.randrange(100)}.log"
        base = {
            "user_id": f"U{team:04d}{rng.randrange(3):04d}",
            "user_groups": [team_group(team), team_group(rng.randrange(TEAMS))],
            "channel_id": f"C{team:08d}",
            "environment": "prod",
            "service_alias": f"svc-{rng.choice((n % 50, (n + 7) % 50))}",
        }
        kind = rng.choice(mix)
        if kind == "tail":
            command = f"tail -n {rng.randrange(1, 5000)} {log}"
        elif kind == "pipe":
            command = f"cat {log} | grep -c {rng.choice(words)}"
        elif kind == "denied":
            command = rng.choice([f"cat /etc/{rng.choice(['shadow', 'passwd', 'hosts'])}",
                                  f"head -c {rng.randrange(1, 999)} {log}", f"grep -r {rng.choice(words)} /"])
        elif kind == "syntax":
            command = rng.choice([f"cat {log}; rm -rf /", f"tail -n 5 {log} > /tmp/x{rng.randrange(99)}",
                                  f"cat $(ls /var/log/app{n})"])
        elif kind == "unlisted":
            base["service_alias"] = f"svc-unlisted-{rng.randrange(99)}"
            command = f"tail -n {rng.randrange(1, 500)} {log}"
        else:
            base = {**base, "user_id": f"U9STRANGER{rng.randrange(999)}", "user_groups": []}
            command = rng.choice(["id", "uptime", f"cat {log}"])
        out.append({**base, "command": command})
        if kinds is not None:
            kinds.append(kind)
    return out


def time_stream(policy: Any, requests: list[dict[str, Any]], *, cpu: bool = False) -> list[float]:
    """Per-decision times in µs over ``requests`` in order, each evaluated once (after a warm-up on
    other requests of the same mix, so imports are not measured)."""
    from bot.policy import evaluate

    for request in request_stream(50, seed=1):
        evaluate(policy, **request)
    times: list[float] = []
    clock = time.thread_time_ns if cpu else time.perf_counter_ns
    for request in requests:
        start = clock()
        evaluate(policy, **request)
        times.append((clock() - start) / 1000)
    return times


def count_opcodes(policy: Any, requests: list[dict[str, Any]], *, warm_up: int) -> list[int]:
    """Python bytecode instructions executed per decision (``sys.settrace`` opcode events), after a
    warm-up on ``warm_up`` other requests of the mix (memos filled as in a running bot). A count that does
    not depend on the machine's speed or load: on a shared VM whose speed drifts during the day it tells
    two versions of the code apart where times cannot. It does not see time spent in C (regexes, dicts,
    cache misses), so it is read beside the times, never instead of them."""
    from bot.policy import evaluate

    for request in request_stream(warm_up, seed=99):
        evaluate(policy, **request)
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            return tracer
        if event == "opcode":
            count += 1
        return tracer

    counts: list[int] = []
    for request in requests:
        count = 0
        sys.settrace(tracer)
        try:
            evaluate(policy, **request)
        finally:
            sys.settrace(None)
        counts.append(count)
    return counts


def print_opcodes(quick: bool) -> None:
    kinds: list[str] = []
    requests = request_stream(200 if quick else 2000, kinds=kinds)
    for label, policy in (("", build_policy()), ("typed_", build_policy(typed=True))):
        counts = count_opcodes(policy, requests, warm_up=200 if quick else 20_000)
        print(f"policy_{label}opcodes_per_decision_mean: {statistics.mean(counts):.0f}")
        print(f"policy_{label}opcodes_per_decision_p99: {percentile([float(c) for c in counts], 0.99):.0f}")
        for kind in sorted(set(kinds)):
            mine = [c for c, k in zip(counts, kinds, strict=True) if k == kind]
            print(f"policy_{label}opcodes_per_decision_mean_{kind}: {statistics.mean(mine):.0f}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.policy", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    parser.add_argument("--cpu", action="store_true", help="measure thread CPU time, not wall time")
    parser.add_argument("--opcodes", action="store_true",
                        help="count Python bytecode instructions per decision instead of timing (see count_opcodes)")
    args = parser.parse_args(argv)
    if args.opcodes:
        print_opcodes(args.quick)
        return 0
    from bot.policy import evaluate

    samples = 200 if args.quick else 20_000
    started = time.perf_counter()
    policy = build_policy()
    load_ms = (time.perf_counter() - started) * 1000

    requests = request_stream(samples)
    times = time_stream(policy, requests, cpu=args.cpu)
    typed_times = time_stream(build_policy(typed=True), requests, cpu=args.cpu)

    worst_policy = build_policy(everyone="U0EVERYWHERE")
    worst = [{"user_id": "U0EVERYWHERE", "user_groups": [], "channel_id": "C00000000", "environment": "prod",
              "service_alias": f"svc-{k % 50}", "command": f"tail -n {k % 97 + 1} /var/log/nowhere/x{k}.log"}
             for k in range(max(20, samples // 100))]
    if any(evaluate(worst_policy, **w).allowed for w in worst[:3]):  # it must check every rule and refuse
        raise SystemExit("worst-case request was allowed; the benchmark policy is wrong")
    worst_times = time_stream(worst_policy, worst, cpu=args.cpu)
    hostile_times = [t / 1000 for t in time_stream(hostile_policy(), hostile_requests(), cpu=args.cpu)]

    print(f"policy_rules: {RULES}")
    print(f"policy_load_ms: {load_ms:.0f}")
    print(f"policy_decision_us_p50: {statistics.median(times):.1f}")
    print(f"policy_decision_us_p99: {percentile(times, 0.99):.1f}")
    print(f"policy_worst_decision_us_p50: {statistics.median(worst_times):.0f}")
    print(f"policy_worst_decision_us_p99: {percentile(worst_times, 0.99):.0f}")
    print(f"policy_typed_decision_us_p50: {statistics.median(typed_times):.1f}")
    print(f"policy_typed_decision_us_p99: {percentile(typed_times, 0.99):.1f}")
    print(f"policy_hostile_word_ms_max: {max(hostile_times):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
