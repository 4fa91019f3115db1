"""Follow-up filters on a kept output: what a Filter click costs once the run is over.

    python -m benchmarks.followups [--mib 8]

The kept output is what production keeps: the capture's full-output file view of an nginx access log
(the file bound, 8 MiB by default), cleaned and redacted by the real pipeline, written by
`bot.store.outputs.DirectoryOutputs` and read back line by line. Each figure is one whole filter
(read + match + keep), median of 5, in milliseconds, and the throughput in MiB of kept output per second:

- ``filter_count_ms``: ``-c ' 502 '`` (every line matched, nothing kept);
- ``filter_regex_tail_ms``: ``--tail 50 'GET /api/v[0-9]+/orders/[0-9]+ .* 50[234] '``;
- ``filter_hostile_ms``: ``(a+)+$`` and ``.*.*.*x`` (patterns that stall a backtracking engine);
- ``keep_ms``: cleaning, redacting and writing the output once, after the run (off the result's path only
  in part: the result message waits for it);
- ``peak_traced_mib``: the largest Python allocation peak of one filter (``tracemalloc``): bounded by the
  filter's 1 MiB of kept lines plus read chunks, whatever the output's size.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path


def access_log(mib: int) -> bytes:
    rng = random.Random(7)
    statuses = [200] * 90 + [301, 404, 499, 502, 502, 503, 504, 500, 200, 200]
    lines = []
    size = 0
    n = 0
    while size < mib * 1024 * 1024:
        n += 1
        status = rng.choice(statuses)
        line = (f'10.0.{rng.randrange(256)}.{rng.randrange(256)} - - [03/Dec/2026:10:{n // 3600 % 60:02d}:'
                f'{n % 60:02d} +0000] "GET /api/v{rng.randrange(1, 3)}/orders/{rng.randrange(10**6)} HTTP/1.1" '
                f'{status} {rng.randrange(100, 9000)} "-" "Mozilla/5.0" rt={rng.random():.3f}\r\n')
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()


def median_ms(fn: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.followups", description=__doc__)
    parser.add_argument("--mib", type=int, default=8, help="size of the command's output (default 8)")
    args = parser.parse_args(argv)

    from bot.output.capture import CapturedOutput, CaptureLimits
    from bot.output.filters import OutputFilter, apply_filter
    from bot.output.redact import builtin_redactor
    from bot.output.views import full_output_text
    from bot.store.outputs import DirectoryOutputs, KeptPart, KeptRun

    raw = access_log(args.mib)
    captured = CapturedOutput.from_bytes(raw, CaptureLimits())
    redactor = builtin_redactor()
    with tempfile.TemporaryDirectory() as root:
        outputs = DirectoryOutputs(Path(root))
        now = time.time()
        run = KeptRun(request_id="bench", requester="U0", channel="C0", thread_ts="1.1", service="web",
                      environment="prod", command="cat /var/log/nginx/access.log", kept_at=now,
                      expires_at=now + 86400, parts=(KeptPart("task", "nginx"),))

        def keep() -> None:
            outputs.put(run, [full_output_text(captured, redactor)])

        keep_ms = median_ms(keep, 3)
        kept_mib = (Path(root) / "runs" / "bench" / "0.txt").stat().st_size / 1024 / 1024

        def timed(spec: OutputFilter) -> float:
            return median_ms(lambda: apply_filter(outputs.chunks("bench", 0), spec))

        count = timed(OutputFilter(" 502 ", count_only=True))
        regex = timed(OutputFilter(r"GET /api/v[0-9]+/orders/[0-9]+ .* 50[234] ", tail=50))
        hostile = max(timed(OutputFilter("(a+)+$")), timed(OutputFilter(".*.*.*x")))
        tracemalloc.start()
        apply_filter(outputs.chunks("bench", 0), OutputFilter("HTTP", head=10_000))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    print(f"output_mib: {args.mib}")
    print(f"kept_mib: {kept_mib:.2f}")
    print(f"keep_ms: {keep_ms:.1f}")
    print(f"filter_count_ms: {count:.1f}")
    print(f"filter_count_mib_per_s: {kept_mib / (count / 1000):.1f}")
    print(f"filter_regex_tail_ms: {regex:.1f}")
    print(f"filter_hostile_ms: {hostile:.1f}")
    print(f"peak_traced_mib: {peak / 1024 / 1024:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
