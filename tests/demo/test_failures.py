"""When a stand-in cannot start, the demo says so in one sentence with the fix, and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from bot.cli import main
from standins.demo import stand_ins

BROKEN_CHILD = "import sys; sys.stderr.write('ModuleNotFoundError: No module named moto\\n'); sys.exit(1)"


def _broken_spawn(log_path: Path) -> subprocess.Popen[str]:
    """What `_spawn_local_ecs` starts when the sandbox extra (moto) is not installed."""
    with open(log_path, "w", encoding="utf-8") as stderr:
        return subprocess.Popen([sys.executable, "-c", BROKEN_CHILD], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=stderr, text=True)


def test_a_local_ecs_that_cannot_start_is_one_sentence_and_everything_is_cleaned_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    threads_before = {t.ident for t in threading.enumerate()}
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(stand_ins, "_spawn_local_ecs", _broken_spawn)

    status = main(["demo"])

    captured = capsys.readouterr()
    assert status == stand_ins.DemoError.exit_status
    assert captured.err.strip().splitlines() == [
        "ecs-exec-bot: The local ECS API did not start (ModuleNotFoundError: No module named moto). "
        "Reinstall the demo's dependencies with `pip install -e ./stand-ins` (or `make demo`)."
    ]
    assert "Traceback" not in captured.out + captured.err
    assert list(tmp_path.iterdir()) == []
    assert {p.pid for p in me.children(recursive=True)} <= children_before
    # The agent and Slack stand-in threads stopped too (polled: a thread ends shortly after it is told to).
    deadline = time.monotonic() + 5
    while (left := [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]):
        assert time.monotonic() < deadline, f"threads left running: {left}"
        time.sleep(0.05)
