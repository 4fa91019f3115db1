"""Policy-file redaction patterns are checked by the redactor's own safety check at load time."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.policy import parse_policy


def test_a_backtracking_redact_pattern_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="(?i)redact|pattern"):
        parse_policy({"redact": [{"name": "slow", "pattern": "(a+)+b"}]})


def test_a_safe_redact_pattern_loads() -> None:
    policy = parse_policy({"redact": [{"name": "internal-token", "pattern": "itk_[A-Za-z0-9]{32}"}]})
    assert policy.redact[0].name == "internal-token"
