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


def test_the_policy_patterns_apply_once_the_config_is_loaded(restore_root_logger,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from bot.output.redact import Redactor
    from bot.policy import parse_policy

    log_filter = configure_logging("INFO")
    log = logging.getLogger("ecs_exec_bot.test")
    secret = "itk_" + "Q" * 32
    log.info("before: %s", secret)
    log_filter.use(Redactor(parse_policy({"redact": [{"name": "internal-token",
                                                      "pattern": "itk_[A-Za-z0-9]{32}"}]}).redact))
    log.info("after: %s", secret)
    before, after = [json.loads(line)["msg"] for line in capsys.readouterr().err.splitlines()]
    assert secret in before  # not a built-in kind: only the policy file knows it
    assert secret not in after and "[redacted:internal-token]" in after
