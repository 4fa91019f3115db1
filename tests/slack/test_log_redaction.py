"""`serve` logs are JSON lines with secrets redacted, in messages and in tracebacks."""

from __future__ import annotations

import json
import logging

import pytest

from bot.cli.serve import configure_logging

KEY = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def restore_root_logger():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def test_messages_and_tracebacks_are_redacted(restore_root_logger, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    log = logging.getLogger("ecs_exec_bot.test")
    log.info("output said %s", f"aws_access_key_id={KEY}")
    try:
        raise RuntimeError(f"boom with {KEY}")
    except RuntimeError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert len(lines) == 2
    assert KEY not in json.dumps(lines) and "[redacted:" in lines[0]["msg"] and "[redacted:" in lines[1]["exc"]
