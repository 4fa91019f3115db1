"""Output-path throughput: redaction (``redaction_mb_s: X``), plus the capture and the cleaner.

Run: ``.venv/bin/python -m benchmarks.redaction`` (or ``python benchmarks/redaction.py``).

The corpus is deterministic: access logs, JSON application logs, a traceback, ``env`` and ``ps`` output,
with a secret every ~40 lines. A second figure, ``redaction_dense_mb_s``, is for text where every line
holds a secret or a keyword (the slow path). Figures are MB (10^6 bytes) per second of CPU time
(``time.process_time``, so other load on the machine does not skew them), best of five runs.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bot` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.output.capture import BoundedCapture  # noqa: E402
from bot.output.clean import clean_terminal_output  # noqa: E402
from bot.output.redact import Redactor  # noqa: E402

_SECRETS = [
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "export GITHUB_TOKEN=ghp_" + "A1b2C3d4E5" * 3 + "F6g7H8",
    'db url: postgres://app:s3cr3t-pass@db.internal:5432/app',
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    'password="hunter2-but-longer"',
    "slack: xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
]


def _typical(rng: random.Random, lines: int) -> str:
    out: list[str] = []
    for i in range(lines):
        r = rng.random()
        if i % 40 == 39:
            out.append(rng.choice(_SECRETS))
        elif r < 0.45:
            out.append(
                f'10.0.{rng.randrange(256)}.{rng.randrange(256)} - - [26/Nov/2026:10:{i % 60:02d}:{i % 60:02d} +0000] '
                f'"GET /api/v1/items/{rng.randrange(10**9)}?page={rng.randrange(9)} HTTP/1.1" 200 '
                f'{rng.randrange(100, 99999)} "-" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36" '
                f"rt=0.{rng.randrange(1000):03d}"
            )
        elif r < 0.8:
            out.append(json.dumps({
                "ts": f"2026-11-26T10:01:02.{i % 1000:03d}Z", "level": "info", "logger": "app.http",
                "msg": "request done", "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "user_id": rng.randrange(10**6), "status": 200, "duration_ms": rng.randrange(500),
                "commit": f"{rng.getrandbits(160):040x}",
            }, separators=(",", ":")))
        elif r < 0.9:
            out.append(f'  File "/app/service/handlers.py", line {rng.randrange(900)}, in handle_request')
        elif r < 0.95:
            out.append(f"HOSTNAME=ip-10-0-{rng.randrange(256)}-{rng.randrange(256)}.ec2.internal PWD=/app LANG=C.UTF-8")
        else:
            out.append(f"app  {rng.randrange(1, 99999):>5}  0.{rng.randrange(99)}  1.2 /usr/bin/python3 -m app --workers 4")
    return "\n".join(out) + "\n"


def _dense(rng: random.Random, lines: int) -> str:
    out = []
    for i in range(lines):
        out.append(f"line {i} token={rng.getrandbits(64):x} " + rng.choice(_SECRETS))
    return "\n".join(out) + "\n"


def _rate(redactor: Redactor, text: str) -> float:
    size = len(text.encode())
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        redactor.redact(text)
        best = min(best, time.process_time() - t0)
    return size / best / 1e6


def _capture_rate(chunk: int, total_mb: int = 512) -> float:
    """MB/s through ``BoundedCapture.write`` (production limits) in ``chunk``-byte writes."""
    data = (b"x" * 79 + b"\n") * (chunk // 80) + b"y" * (chunk % 80)
    writes = total_mb * 1_000_000 // chunk
    cap = BoundedCapture()
    write = cap.write
    t0 = time.process_time()
    for _ in range(writes):
        write(data)
    elapsed = time.process_time() - t0
    assert cap.held_bytes <= cap.max_held_bytes
    return writes * chunk / elapsed / 1e6


def _clean_rate(text: str) -> float:
    raw = text.replace("\n", "\r\n").replace("200", "\x1b[32m200\x1b[0m").encode()
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        clean_terminal_output(raw)
        best = min(best, time.process_time() - t0)
    return len(raw) / best / 1e6


def main() -> None:
    rng = random.Random(1234)
    redactor = Redactor([("internal-token", r"itk_[A-Za-z0-9]{32}")])
    typical = _typical(rng, 40_000)
    dense = _dense(rng, 20_000)
    print(f"redaction_corpus_mb: {len(typical.encode()) / 1e6:.1f}")
    print(f"redaction_mb_s: {_rate(redactor, typical):.0f}")
    print(f"redaction_dense_mb_s: {_rate(redactor, dense):.0f}")
    print(f"capture_1k_writes_mb_s: {_capture_rate(1024):.0f}")
    print(f"capture_64k_writes_mb_s: {_capture_rate(65536):.0f}")
    print(f"clean_pty_mb_s: {_clean_rate(typical):.0f}")


if __name__ == "__main__":
    main()
