"""README.md cannot drift from the code: its config example parses, uses every key, and says what it says.

The example is the ```yaml block right after the ``<!-- config-example -->`` marker. It must parse with
``bot.config.parse_config`` (the same function the bot runs at start-up), use every key the config models
accept, and the decisions the README claims for it must be the policy's. The settings table must name every
environment variable ``bot.settings.Settings`` reads, and the CLI section every subcommand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import SUBCOMMANDS
from bot.config import (
    BotConfig,
    ClusterConfig,
    EnvironmentConfig,
    FanoutConfig,
    ServiceConfig,
    parse_config,
)
from bot.errors import ConfigError
from bot.policy import ApprovalRule, Approvers, CommandPattern, PolicyConfig, RedactPattern, Rule, evaluate
from bot.runbooks import Extractor, Runbook, RunbookStep
from bot.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- config-example -->"


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def config_example() -> str:
    text = readme_text()
    assert MARKER in text, f"README.md lost the {MARKER} marker before its config example"
    after = text.split(MARKER, 1)[1]
    match = re.match(r"\s*```yaml\n(.*?)\n```", after, re.DOTALL)
    assert match, f"README.md: no ```yaml block right after {MARKER}"
    return match.group(1)


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {str(k) for k in node}
        for value in node.values():
            found |= _keys(value)
        return found
    if isinstance(node, list):
        return set().union(*(_keys(item) for item in node)) if node else set()
    return set()


def test_config_example_parses() -> None:
    config = parse_config(config_example(), source="README.md")
    assert isinstance(config.policy, PolicyConfig)
    assert config.policy.rules and config.policy.redact
    assert any(rule.needs_approval for rule in config.policy.rules)


@pytest.mark.parametrize(
    "model",
    [BotConfig, EnvironmentConfig, ClusterConfig, ServiceConfig, FanoutConfig, PolicyConfig, Rule,
     ApprovalRule, Approvers, CommandPattern, RedactPattern, Runbook, RunbookStep, Extractor],
)
def test_config_example_uses_every_key(model: type) -> None:
    used = _keys(yaml.safe_load(config_example()))
    fields = set(model.model_fields) - {"source"}  # BotConfig.source is the file name, not a key
    missing = fields - used
    assert not missing, f"README config example never shows {model.__name__} keys {sorted(missing)}"


def test_config_example_errors_name_the_line() -> None:
    broken = config_example().replace("min_approvals: 1", "min_aprovals: 1", 1)
    with pytest.raises(ConfigError) as info:
        parse_config(broken, source="README.md")
    assert "line" in info.value.message and "unknown key" in info.value.message


# (user, groups, channel, service, command) -> outcome, as the README's comments and examples claim.
CLAIMS = [
    ("U0ALICE", (), "C0INCIDENT", "web", "tail -n 100 /var/log/nginx/access.log", "allowed"),
    ("U0ALICE", (), "C0INCIDENT", "web", "grep ' 504 ' /var/log/nginx/access.log | sort | uniq -c", "allowed"),
    ("U0ALICE", (), "C0INCIDENT", "web", "grep -r x /var/log/nginx/access.log", "denied"),
    ("U0ALICE", (), "C0INCIDENT", "web", "tail -n 100 /var/log/nginx/sub/access.log", "denied"),
    ("U0ALICE", (), "C0INCIDENT", "web", "ls -l /var/log/nginx/old/x.gz", "allowed"),
    ("U0ALICE", (), "C0INCIDENT", "web", "tail -n 5 /var/log/nginx/access.log; rm -rf /", "denied"),
    ("U0ALICE", (), "C0OTHER", "web", "tail -n 5 /var/log/nginx/access.log", "denied"),
    ("U0CAROL", (), "C0INCIDENT", "web", "tail -n 5 /var/log/nginx/access.log", "denied"),
    ("U0ALICE", ("S0ONCALL",), "C0INCIDENT", "web", "cat /etc/nginx/nginx.conf", "needs_approval"),
    ("U0DAN", ("S0SRE",), "C0OPS", "payments", "cd /srv/app && ./bin/healthcheck --verbose", "needs_approval"),
    ("U0DAN", ("S0SRE",), "C0OPS", "payments", "cd /srv/app && ./bin/healthcheck --verbose; id", "denied"),
]


@pytest.mark.parametrize(("user", "groups", "channel", "service", "command", "outcome"), CLAIMS)
def test_config_example_decides_as_documented(
    user: str, groups: tuple[str, ...], channel: str, service: str, command: str, outcome: str
) -> None:
    config = parse_config(config_example(), source="README.md")
    decision = evaluate(
        config.policy, user_id=user, user_groups=groups, channel_id=channel, service_alias=service,
        environment=config.environment_of(config.services[service]), command=command,
    )
    assert decision.outcome == outcome, decision.reason


def test_settings_table_names_every_variable() -> None:
    text = readme_text()
    for name, field in Settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None) or [name.upper()]
        for alias in aliases:
            assert f"`{alias}`" in text, f"README.md does not document {alias} (Settings.{name})"


def test_readme_names_only_real_bot_variables() -> None:
    known = {str(a) for f in Settings.model_fields.values() for a in f.validation_alias.choices}
    known.add("ECS_EXEC_BOT_DRAIN_GRACE")  # read by `serve` itself (bot/cli/serve.py)
    known.add("ECS_EXEC_BOT_LIVE_UPDATES_PER_MINUTE")  # likewise
    for name in set(re.findall(r"\bECS_EXEC_BOT_[A-Z_]+\b", readme_text())):
        assert name in known, f"README.md names {name}, which the bot does not read"


def test_readme_lists_every_cli_subcommand() -> None:
    text = readme_text()
    for name, _module, _help in SUBCOMMANDS:
        assert f"ecs-exec-bot {name}" in text, f"README.md does not show `ecs-exec-bot {name}`"
