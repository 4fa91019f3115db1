"""`ecs-exec-bot demo` end to end: in-process, as a real subprocess, and interactively until Ctrl-C/SIGTERM.

Each run starts the real stand-ins and the real bot, so these tests check the transcript for what each
tour step must show, and afterwards that nothing is left: no listening socket, no child process, no
temp dir.
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psutil
import pytest

from bot.cli import main
from standins.demo.stand_ins import TASK_DIR

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
URL = re.compile(r"http://127\.0\.0\.1:(\d+)")
RUN_TIMEOUT_S = 90


def _access_log() -> list[str]:
    return (TASK_DIR / "var/log/nginx/access.log").read_text().splitlines()


def _check_tour(transcript: str) -> None:
    """The key lines of every tour step."""
    assert "Everything listens on 127.0.0.1 only" in transcript
    assert "/var/log/nginx/access.log is the task's file, never this machine's" in transcript
    # 1. tail: the last lines of the sample log, as output of the command.
    for line in _access_log()[-5:]:
        assert f"┆ {line}" in transcript
    assert "✅ web (prod) · exit 0" in transcript
    # 2. grep | cut | sort | uniq -c: the counts of 504s per path, computed from the same file.
    counts = Counter(line.split(" ")[6] for line in _access_log() if " 504 " in line)
    assert counts
    for path, n in counts.items():
        assert re.search(rf"┆ +{n} {re.escape(path)}$", transcript, re.M), (path, n)
    # 3. the hostile command: refused to the requester only, with the reason; it never ran.
    assert "@alice › /ecs-exec web cat x; rm -rf /" in transcript
    refusal = transcript.split("rm -rf /\n", 1)[1].split("\n──", 1)[0]
    assert "only visible to @alice" in refusal
    assert "`;` chains commands and is not allowed" in refusal
    # 4. redaction: kinds shown, values never.
    for kind in ("aws-secret-access-key", "aws-access-key-id", "database-dsn", "internal-token"):
        assert f"[redacted:{kind}]" in transcript
    for secret in ("wJalrXUtnFEMI", "Tr0ub4dor", "AKIAIOSFODNN7EXAMPLE", "itk_DEMO"):
        assert secret not in transcript
    # 5. long output: the notice in the message and the file in its thread, with its first line.
    assert "not shown ···" in transcript
    assert "full output (redacted) in the thread" in transcript
    assert re.search(r"in the thread · #incident\n    📎 worker-\S+\.txt · [\d.]+ KB · 4,000 lines", transcript)
    first_job = (TASK_DIR / "var/log/worker/jobs.log").read_text().splitlines()[0]
    assert f"┆ {first_job}" in transcript
    # 6. approval by a second person.
    assert "Approval needed · @alice wants to run on web (prod)" in transcript
    assert "@bob › clicks [ Approve ]" in transcript
    assert "by @alice · approved by @bob" in transcript
    assert "┆ worker_processes  auto;" in transcript
    # 7. self-approval refused; then denied by bob.
    assert "@alice › clicks [ Approve ]" in transcript
    self_approval = transcript.split("@alice › clicks [ Approve ]", 1)[1].split("@bob ›", 1)[0]
    assert "only visible to @alice" in self_approval
    assert "cannot approve your own request" in self_approval
    assert "Denied by @bob" in transcript
    # 8. the incident's thread: a mention runs there, with the Filter button under its result.
    thread = transcript.split("In the incident's thread", 1)[1]
    assert "@alice › @ecs-exec web tail -n 3 /var/log/nginx/error.log   (in the thread)" in thread
    assert "ecs-exec APP  in the thread · #incident\n    ✅ web (prod) · exit 0" in thread
    assert "[ 🔎 Filter ]" in thread
    # 9. live progress (the same message, edited, with what came so far), then Cancel ends it.
    live = thread.split("Live progress while it runs", 1)[1].split("\n──", 1)[0]
    assert re.search(r"in the thread · #incident · \(edited\)\n.*\n.*\n    ⏱ [\d.]+ s · \d+ lines · .* so far", live)
    assert '"GET /api/orders/1000 HTTP/1.1"' in live  # served while it was watched
    assert "@bob › clicks [ Cancel ]" in live and "🛑 web (prod) · cancelled" in live
    assert "cancelled by @bob" in live
    # 10. follow-ups: the form counts, the reply shows the last matches; nothing ran again.
    follow = thread.split("Follow-ups: filter the output", 1)[1]
    assert re.search(r"🔎 web \(prod\) · \d+ of [\d,]+ lines match `-c ' 50\[234\] '`", follow)
    assert re.search(r"🔎 web \(prod\) · \d+ of [\d,]+ lines match `--tail 3 ' 502 '`", follow)
    assert follow.count("nothing was run again") == 2
    # The end: what to do next.
    assert "Tour over in" in transcript
    assert "ecs-exec-bot serve" in transcript.splitlines()[-1]


def _assert_closed(ports: set[int]) -> None:
    assert ports, "the transcript names the ports it listened on"
    for port in ports:
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))


def _listening(proc: psutil.Process) -> set[tuple[str, int]]:
    return {(c.laddr.ip, c.laddr.port) for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def _processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("DEMO_TEST_MARKER") == marker:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


class _Tty(io.StringIO):
    """What a terminal looks like to the demo: a TTY that can encode UTF-8."""

    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_tour_in_process_on_a_tty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    me = psutil.Process()
    listening_before = _listening(me)
    children_before = {p.pid for p in me.children(recursive=True)}
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    out = _Tty()
    monkeypatch.setattr(sys, "stdout", out)

    assert main(["demo"]) == 0

    raw = out.getvalue()
    assert ANSI.search(raw), "a terminal gets colour"
    transcript = ANSI.sub("", raw)
    _check_tour(transcript)
    _assert_closed({int(p) for p in URL.findall(transcript)})
    assert _listening(me) <= listening_before
    assert {p.pid for p in me.children(recursive=True)} <= children_before
    assert list(tmp_path.iterdir()) == []


def _subprocess_env(tmp_path: Path, marker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PYTHONPATH")}
    return env | {"TMPDIR": str(tmp_path), "DEMO_TEST_MARKER": marker, "PYTHONUNBUFFERED": "1"}


def test_tour_as_a_subprocess(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        cwd=REPO,
        env=_subprocess_env(tmp_path, marker),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    assert not ANSI.search(done.stdout), "no colour when stdout is not a terminal"
    _check_tour(done.stdout)
    assert done.stderr == ""
    _assert_closed({int(p) for p in URL.findall(done.stdout)})
    assert _processes_with(marker) == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("signum", "status", "note"),
    [
        (signal.SIGINT, 130, "Interrupted: every stand-in is stopped and the temp dir removed."),
        (signal.SIGTERM, 143, "Terminated: every stand-in is stopped and the temp dir removed."),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_interactive_session_then_a_signal(tmp_path: Path, signum: int, status: int, note: str) -> None:
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--interactive"],
        cwd=REPO,
        env=_subprocess_env(tmp_path, marker),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not any(text in line for line in seen):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"demo ended before {text!r}:\n{''.join(seen)}"
            seen.append(line)

    try:
        assert proc.stdin is not None
        proc.stdin.write(
            "/ecs-exec web tail -n 2 /var/log/nginx/error.log\n"
            ":frobnicate\n"
            'web --reason "check upstreams" cat /etc/nginx/nginx.conf\n'
            ":approve\n"
            ":as bob\n"
            ":requests\n"
            ":approve\n"
        )
        proc.stdin.flush()
        wait_for("approved by @bob")
        # While it runs, the demo and its ECS child listen on loopback only.
        demo = psutil.Process(proc.pid)
        addresses = {ip for p in (demo, *demo.children(recursive=True)) for ip, _ in _listening(p)}
        assert addresses == {"127.0.0.1"}
        # The pipe stays open: the demo is waiting for the next line when the signal comes.
        time.sleep(0.2)
        proc.send_signal(signum)
        proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while (line := lines.get(timeout=RUN_TIMEOUT_S)) is not None:
        seen.append(line)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    transcript = "".join(seen)
    assert proc.returncode == status, stderr
    error_log = (TASK_DIR / "var/log/nginx/error.log").read_text().splitlines()
    assert f"┆ {error_log[-1]}" in transcript
    assert "Unknown key `:frobnicate`" in transcript
    assert "cannot approve your own request" in transcript
    assert "You are now @bob." in transcript
    assert re.search(r"request [0-9a-f]+: :approve [0-9a-f]+ :deny [0-9a-f]+ :cancel [0-9a-f]+", transcript)
    assert note in transcript
    assert "Traceback" not in stderr
    _assert_closed({int(p) for p in URL.findall(transcript)})
    assert _processes_with(marker) == []
    assert list(tmp_path.iterdir()) == []
