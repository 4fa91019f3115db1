"""Live progress under load: 20 commands printing for 60 s at once, against a rate-limited fake Slack.

    python -m benchmarks.live_updates [--runs 20] [--seconds 60]

The real app (``handlers.server.runtime.serve``: signed slash commands over HTTP, the ledger, the executor,
`handlers.delivery.SlackRun` with its live messages and the shared per-workspace budget at its default,
40 chat.update/min) runs against FakeSlack whose ``chat.update`` enforces Slack's Tier 3 (50/min per
workspace; over it: 429 + Retry-After). The exec backend is in-process: each command prints a line every
0.25 s and reports progress once a second, as the runner does, so what is measured is Slack traffic.

Figures (``key: number``): chat.update calls (live and final) per second, mean and peak, and in the busiest
minute; the 429s FakeSlack answered (a live update drops its 429 and pauses every live message; a result is
retried by the SDK, so none is lost); how many messages' last update is their result (all of them, or the
exit status is 1).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.ack_latency import FastBackend, bench_config

SIGNING_SECRET = "bench-signing-secret"
SLACK_TIER3_PER_MINUTE = 50


class TickingBackend(FastBackend):
    """`bot.runs.backend.ExecBackend` whose command ``follow N`` prints a line every 0.25 s for N seconds
    (the rest as the ack benchmark's backend: one task per requester, no session to end)."""

    async def run(self, target: Any, command: str, *, timeout: float, requester: str,  # noqa: ASYNC109
                  cancel: asyncio.Event | None, on_started: Any, on_progress: Any = None) -> Any:
        from bot.output.capture import CapturedOutput
        from bot.output.live_tail import LiveTail
        from bot.runner import ExecProgress, ExecResult

        if on_started is not None:
            await on_started("bench-session")
        seconds = float(command.split()[-1])
        started = time.monotonic()
        tail, out = LiveTail(), bytearray()
        next_report = started + 1.0
        n = 0
        while time.monotonic() - started < seconds and not (cancel is not None and cancel.is_set()):
            await asyncio.sleep(0.25)
            n += 1
            line = f'10.0.{n % 250}.7 - - "GET /api/items/{n} HTTP/1.1" 200 {n * 7 % 9000}\r\n'.encode()
            tail.write(line)
            out += line
            if on_progress is not None and time.monotonic() >= next_report:
                next_report += 1.0
                await on_progress(ExecProgress(tail.total_bytes, tail.lines, tail.text(), time.monotonic() - started))
        captured = CapturedOutput.from_bytes(bytes(out))
        return ExecResult(target, command, 0, "ok", time.monotonic() - started, captured, "bench-session")


async def measure(runs: int, seconds: float, workdir: Path) -> dict[str, Any]:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.config import parse_config
    from bot.runs.limits import RunLimiter, RunLimits
    from bot.services import Services, build_services
    from bot.store.sqlite import SqliteStore
    from handlers.app import SlackSettings
    from handlers.server.runtime import RunningBot, ServeOptions, serve
    from handlers.usergroups import UserGroupCache
    from standins.fake_slack import FakeSlack
    from tests.support.slack_requests import SlackSender

    users = [f"U0LIVE{n:03d}" for n in range(runs)]
    config = parse_config(bench_config(users, [["follow", "*"]], 600), source="bench.yaml")
    limits = RunLimits(max_concurrent_per_user=10, max_runs_per_minute_per_user=100, max_concurrent_per_task=10)

    async def services(client: AsyncWebClient, info: dict[str, Any]) -> Services:
        store = SqliteStore(workdir / "bench.db")
        return build_services(config, store, TickingBackend(), UserGroupCache(client),
                              limiter=RunLimiter(store, limits), bot_user_id=str(info.get("user_id")))

    with FakeSlack() as fake:
        fake.enforce_rate_limit("chat.update", SLACK_TIER3_PER_MINUTE)
        slack = SlackSettings(bot_token=fake.bot_token, signing_secret=SIGNING_SECRET, app_token=None,
                              api_url=fake.api_url)
        ready: asyncio.Future[RunningBot] = asyncio.get_running_loop().create_future()
        served = asyncio.create_task(serve(slack, services, ServeOptions(host="127.0.0.1", port=0),
                                           on_ready=ready.set_result, install_signal_handlers=False))
        await asyncio.wait({ready, served}, return_when=asyncio.FIRST_COMPLETED)
        if served.done():
            served.result()
        running = ready.result()
        sender = SlackSender(running.url, SIGNING_SECRET)
        started = time.monotonic()
        try:
            acks = await asyncio.gather(*(
                sender.command(f"web follow {seconds:g}", user_id=u, channel_id="C0INCIDENT",
                               response_url=fake.response_url("bench")) for u in users
            ))
            assert all(a.status == 200 for a in acks), [a.body for a in acks if a.status != 200]
            await asyncio.sleep(0.5)
            pending = {job.finished for job in running.services.jobs.running()}
            await asyncio.wait(pending, timeout=seconds + 180)
            wall = time.monotonic() - started
        finally:
            running.stop.set()
            with contextlib.suppress(Exception):
                await served
        return summarise(fake, runs, wall)


def summarise(fake: Any, runs: int, wall: float) -> dict[str, Any]:
    updates = [c for c in fake.calls("chat.update")]
    t0 = min((c.at for c in fake.calls("chat.postMessage")), default=0.0)
    per_second = collections.Counter(int(c.at - t0) for c in updates)
    busiest_minute = max((sum(per_second[s] for s in range(start, start + 60)) for start in per_second), default=0)
    last_by_ts: dict[str, str] = {}
    count_by_ts: collections.Counter[str] = collections.Counter()
    for call in updates:
        ts = str(call.params.get("ts"))
        count_by_ts[ts] += 1
        last_by_ts[ts] = str(call.params.get("blocks"))
    finals = sum(1 for text in last_by_ts.values() if "so far" not in text and "exit 0" in text)
    return {
        "live_runs": runs,
        "live_wall_s": round(wall, 1),
        "live_chat_update_calls": len(updates),
        "live_chat_update_per_s_mean": round(len(updates) / max(wall, 1.0), 2),
        "live_chat_update_per_s_peak": max(per_second.values(), default=0),
        "live_chat_update_busiest_minute": busiest_minute,
        "live_updates_per_message_mean": round((len(updates) - runs) / max(1, runs), 1),
        "live_429_answered": fake.rate_limited.get("chat.update", 0),
        "live_messages_ending_with_result": finals,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live_updates", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="concurrent commands (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each prints (default 60; 5 for a smoke run)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        figures = asyncio.run(measure(args.runs, args.seconds, Path(tmp)))
    for key, value in figures.items():
        print(f"{key}: {value}")
    ok = figures["live_messages_ending_with_result"] == args.runs
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
