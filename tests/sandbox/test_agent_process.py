"""``python -m standins.agent``: prints its URL, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from standins.agent import main


def test_agent_process_prints_its_url_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.agent", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        with urllib.request.urlopen(url + "/control/health", timeout=5) as response:
            assert json.loads(response.read()) == {"ok": True, "sessions": 0}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()


def test_agent_cli_rejects_bad_arguments(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        main(["--port", "not-a-number"])
    assert info.value.code == 2
    assert "--port" in capsys.readouterr().err
