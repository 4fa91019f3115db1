"""Regenerates the demo's sample files under ``stand-ins/standins/data/demo/task/`` (deterministic).

The files are committed (the demo ships inside the package); this generator documents how they were
made and ``test_sample_data.py`` checks that the committed bytes are exactly what it produces, so an
edit to one without the other is caught. Run ``python -m tests.demo.sample_data`` to rewrite them.

The story the data tells: ``shop.example.com`` behind nginx, 26 Nov 2026 10:00-11:00 UTC, with a burst
of 502/504s from the checkout upstream between 10:41 and 10:44 (what the tour's grep finds).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

TASK_DIR = Path(__file__).resolve().parents[2] / "stand-ins" / "standins" / "data" / "demo" / "task"

ACCESS_LINES = 3000
WORKER_LINES = 4000
INCIDENT = (41 * 60, 44 * 60)  # seconds after 10:00 with upstream failures

_PATHS = (
    ("GET", "/", 0.30), ("GET", "/static/app.js", 0.12), ("GET", "/static/app.css", 0.10),
    ("GET", "/api/products", 0.14), ("GET", "/api/products/{n}", 0.12), ("GET", "/api/cart", 0.07),
    ("POST", "/api/cart/items", 0.05), ("POST", "/api/checkout", 0.04), ("GET", "/api/orders/{n}", 0.04),
    ("GET", "/healthz", 0.02),
)
_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "ELB-HealthChecker/2.0",
    "curl/8.5.0",
)


def _clock(seconds: int) -> tuple[int, int, int]:
    return 10 + seconds // 3600, seconds // 60 % 60, seconds % 60


def access_log(rng: random.Random) -> str:
    lines = []
    weights = [w for _, _, w in _PATHS]
    for i in range(ACCESS_LINES):
        t = i * 3600 // ACCESS_LINES
        h, m, s = _clock(t)
        method, path, _ = rng.choices(_PATHS, weights)[0]
        path = path.replace("{n}", str(rng.randint(1000, 9999)))
        agent = "ELB-HealthChecker/2.0" if path == "/healthz" else rng.choice(_AGENTS[:3] + _AGENTS[4:])
        status, size, rt = 200, rng.randint(300, 48000), rng.uniform(0.002, 0.12)
        if path.startswith("/api/") and INCIDENT[0] <= t < INCIDENT[1] and rng.random() < 0.45:
            status, size, rt = rng.choice((502, 502, 504)), 157, rng.uniform(2.9, 3.0)
        elif rng.random() < 0.03:
            status, size = rng.choice((301, 304, 404)), rng.randint(0, 600)
        client = f"10.0.{rng.randint(1, 9)}.{rng.randint(2, 254)}"
        ref = "-" if rng.random() < 0.6 else "https://shop.example.com/"
        lines.append(
            f'{client} - - [26/Nov/2026:{h:02d}:{m:02d}:{s:02d} +0000] "{method} {path} HTTP/1.1" {status} '
            f'{size} "{ref}" "{agent}" rt={rt:.3f}'
        )
    return "\n".join(lines) + "\n"


def error_log(rng: random.Random) -> str:
    lines = []
    for n in range(48):
        t = INCIDENT[0] + n * (INCIDENT[1] - INCIDENT[0]) // 48
        h, m, s = _clock(t)
        client = f"10.0.{rng.randint(1, 9)}.{rng.randint(2, 254)}"
        upstream = rng.choice(("10.0.9.12", "10.0.9.13"))
        if n % 3:
            what = "upstream timed out (110: Connection timed out) while reading response header from upstream"
            path = "/api/checkout"
        else:
            what = "connect() failed (111: Connection refused) while connecting to upstream"
            path = rng.choice(("/api/cart", "/api/orders/4242", "/api/products"))
        lines.append(
            f"2026/11/26 {h:02d}:{m:02d}:{s:02d} [error] 29#29: *{1000 + n * 7} {what}, client: {client}, "
            f'server: shop.example.com, request: "GET {path} HTTP/1.1", upstream: "http://{upstream}:8080{path}", '
            'host: "shop.example.com"'
        )
    return "\n".join(lines) + "\n"


def worker_log(rng: random.Random) -> str:
    lines = []
    for i in range(WORKER_LINES):
        t = i * 3600 // WORKER_LINES
        h, m, s = _clock(t)
        job = 880000 + i
        kind = rng.choice(("send-receipt", "resize-image", "sync-inventory", "charge-card", "export-report"))
        if rng.random() < 0.02:
            lines.append(f"2026-11-26T{h:02d}:{m:02d}:{s:02d}Z WARN  job={job} kind={kind} attempt=2 "
                         "retrying after upstream 503")
        else:
            lines.append(f"2026-11-26T{h:02d}:{m:02d}:{s:02d}Z INFO  job={job} kind={kind} "
                         f"took_ms={rng.randint(4, 900)} status=done")
    return "\n".join(lines) + "\n"


# Fake secrets in the shapes real ones have, so the demo can show redaction. None of them is real: the
# AWS pair is AWS's documented example, the rest are made of fixed filler characters.
CONFIG_ENV = """\
# orders-api: staging configuration (read by the app at start-up)
APP_ENV=staging
LOG_LEVEL=info
UPSTREAM_TIMEOUT_MS=3000
FEATURE_FLAGS=checkout-v2,fast-search
DATABASE_URL=postgres://orders:Tr0ub4dor-staging-42@db.staging.internal:5432/orders
REDIS_URL=redis://cache.staging.internal:6379/0
AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
STRIPE_API_KEY=sk_live_DEMOdemoDEMOdemoDEMOdemo0000
SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T00000000/B00000000/DEMOdemoDEMOdemoDEMOdemo
SESSION_SECRET=correct-horse-battery-staple-demo
INTERNAL_TOKEN=itk_DEMOdemoDEMOdemoDEMOdemoDEMOdemo
"""

NGINX_CONF = """\
user  nginx;
worker_processes  auto;
error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;
    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time';
    access_log  /var/log/nginx/access.log  main;
    sendfile        on;
    keepalive_timeout  65;

    upstream orders_api {
        server 10.0.9.12:8080 max_fails=3 fail_timeout=10s;
        server 10.0.9.13:8080 max_fails=3 fail_timeout=10s;
    }

    server {
        listen       80;
        server_name  shop.example.com;
        location /static/ { root /usr/share/nginx/html; expires 7d; }
        location /api/ {
            proxy_pass http://orders_api;
            proxy_connect_timeout 1s;
            proxy_read_timeout 3s;
        }
        location = /healthz { return 200 "ok\\n"; }
    }
}
"""

README = """\
This directory plays the filesystem of the demo's ECS tasks: the local agent runs every command in
it, and container paths name its files (/var/log/nginx/access.log is var/log/nginx/access.log here).
It is a temporary copy; the demo deletes it when it stops.
"""


def files() -> dict[str, str]:
    rng = random.Random(20261126)
    return {
        "README.txt": README,
        "var/log/nginx/access.log": access_log(rng),
        "var/log/nginx/error.log": error_log(rng),
        "var/log/worker/jobs.log": worker_log(rng),
        "etc/app/config.env": CONFIG_ENV,
        "etc/nginx/nginx.conf": NGINX_CONF,
    }


def write(root: Path = TASK_DIR) -> None:
    for rel, text in files().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else TASK_DIR)
