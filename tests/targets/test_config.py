from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import MAX_TIMEOUT_S, BotConfig, load_config, parse_config
from bot.errors import ConfigError
from bot.settings import Settings, load_settings

GOOD = """\
environments:
  prod: {region: us-east-1, account: 111122223333, role_arn: "arn:aws:iam::111122223333:role/ecs-exec-bot-prod"}
  staging: {region: eu-west-1}
clusters:
  main: {environment: staging, name: staging-main}
services:
  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx, shell: true, timeout: 30}
  worker: {cluster: main, service: worker-svc, shell: false}
fanout: {max_tasks: 5, concurrency: 2}
"""


def test_good_file_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "bot.yaml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert isinstance(cfg, BotConfig)
    assert cfg.environments["prod"].account == "111122223333"
    web = cfg.services["web"]
    assert (web.cluster, web.service, web.container, web.timeout) == ("prod", "web-nginx", "nginx", 30)
    worker = cfg.services["worker"]
    assert cfg.environment_of(worker) == "staging"
    assert cfg.cluster_name_of(worker) == "staging-main"
    assert cfg.cluster_name_of(web) == "prod"
    assert worker.timeout == 60 and worker.shell is False
    assert cfg.fanout.max_tasks == 5
    assert cfg.source == str(path)


def test_empty_file_is_an_empty_catalogue() -> None:
    assert parse_config("").services == {}


def error_for(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="bot.yaml")
    return info.value.user_text()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("services:\n  web:\n    environment: prod\n    cluster: c\n    service: s\n    timout: 3\n",
         6, "services.web.timout: unknown key"),
        ("environments:\n  prod: {}\nservices:\n  web: {environment: prod, cluster: c, service: s,\n"
         "        timeout: 5000}\n", 5, "services.web.timeout"),
        ("environments:\n  prod: {}\nservices:\n  web:\n    environment: prod\n    cluster: c\n", 4,
         "services.web.service: required key is missing"),
        ("environments:\n  prod: {role_arn: nope}\n", 2, "must be an IAM role ARN"),
        ("environments:\n  prod:\n    account: '111122223333'\n    role_arn: arn:aws:iam::999999999999:role/x\n",
         2, "environments.prod: role_arn is in account 999999999999, not 111122223333"),
        ("environments:\n  prod: {}\nservices:\n  web: {environment: prd, cluster: c, service: s}\n", 4,
         "unknown environment 'prd' (known: prod)"),
        ("services:\n  web: {cluster: c, service: s}\n", 2, "needs `environment:`"),
        ("environments:\n  prod: {}\n  prod: {}\n", 3, "duplicate key 'prod'"),
        ("services:\n  web: [unclosed\n", 3, "YAML syntax"),
        # A tag safe_load refuses fails while constructing, after the parse: still one sentence with the line.
        ("environments:\n  prod: !!python/object:os.system {}\n", 2, "could not determine a constructor"),
        ("x: 1\ny: !foo bar\n", 2, "tag '!foo'"),
        ("- just\n- a list\n", 1, "top level must be a mapping"),
    ],
)
def test_invalid_files_name_file_line_and_problem(text: str, line: int, words: str) -> None:
    message = error_for(text)
    assert f"bot.yaml, line {line}:" in message
    assert words in message
    assert message.endswith("Fix the file and start again.")


def test_timeout_bound_is_below_the_ecs_idle_limit() -> None:
    assert MAX_TIMEOUT_S < 20 * 60
    ok = "environments: {p: {}}\nservices:\n  w: {environment: p, cluster: c, service: s, timeout: 1190}\n"
    assert parse_config(ok).services["w"].timeout == 1190


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read config file"):
        load_config(tmp_path / "absent.yaml")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("ECS_EXEC_BOT_CONFIG", "/etc/bot.yaml")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("ECS_EXEC_BOT_LOG_LEVEL", "debug")
    s = load_settings()
    assert s.slack_bot_token == "xoxb-1"
    assert s.config_file == Path("/etc/bot.yaml")
    assert s.aws_region == "eu-west-1"
    assert s.log_level == "DEBUG"
    assert (s.host, s.port, s.store) == ("0.0.0.0", 3000, "sqlite")
    assert "xoxb-1" not in repr(s)
    assert set(Settings.model_fields) >= {
        "slack_bot_token", "slack_app_token", "slack_signing_secret", "slack_api_url", "host", "port",
        "config_file", "store", "sqlite_path", "dynamodb_table", "audit_channel", "aws_region", "log_level",
    }


def test_settings_from_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECS_EXEC_BOT_PORT", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    (tmp_path / ".env").write_text("ECS_EXEC_BOT_PORT=8080\n")
    assert load_settings().port == 8080


def test_bad_settings_are_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ECS_EXEC_BOT_STORE", "dynamodb")
    monkeypatch.delenv("ECS_EXEC_BOT_DYNAMODB_TABLE", raising=False)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "Set ECS_EXEC_BOT_DYNAMODB_TABLE" in info.value.user_text()
    monkeypatch.setenv("ECS_EXEC_BOT_STORE", "redis")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "ECS_EXEC_BOT_STORE is invalid" in info.value.user_text()


POLICY = """\
environments: {prod: {region: us-east-1}}
services:
  web: {environment: prod, cluster: prod, service: web-nginx}
policy:
  rules:
    - name: oncall-logs
      users: [U0ALICE]
      environments: [prod]
      commands:
        - argv: ["cat", "/var/log/nginx/*"]
"""


def test_policy_section_is_a_policy_config() -> None:
    from bot.policy import PolicyConfig

    cfg = parse_config(POLICY)
    assert isinstance(cfg.policy, PolicyConfig)
    assert cfg.policy.rules[0].name == "oncall-logs"


def test_policy_errors_point_at_the_policy_line() -> None:
    text = error_for(POLICY.replace("      users: [U0ALICE]\n", "      usrs: [U0ALICE]\n"))
    assert "bot.yaml, line 7: policy.rules.0.usrs: unknown key" in text


def test_a_rule_naming_an_unknown_service_is_a_config_error_with_its_line() -> None:
    text = (
        "environments:\n  prod: {region: us-east-1}\n"
        "services:\n  web: {environment: prod, cluster: prod, service: web-nginx}\n"
        "policy:\n  rules:\n    - name: r1\n      users: [U0ALICE]\n      services: [wbe]\n"
        "      commands: [{argv: [uptime]}]\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="bot.yaml")
    assert "line 9" in info.value.message and "unknown service 'wbe'" in info.value.message


def test_a_rule_may_name_any_service_with_a_star() -> None:
    text = (
        "environments:\n  prod: {region: us-east-1}\n"
        "services:\n  web: {environment: prod, cluster: prod, service: web-nginx}\n"
        "policy:\n  rules:\n    - {name: r1, users: [U0ALICE], services: ['*'], commands: [{argv: [uptime]}]}\n"
    )
    assert parse_config(text).policy.rules[0].services == ("*",)


def test_the_limits_section_is_read_and_checked() -> None:
    assert parse_config("limits: {max_concurrent_per_user: 5}\n").limits.max_concurrent_per_user == 5
    with pytest.raises(ConfigError, match="line 1: limits.max_concurent_per_user: unknown key"):
        parse_config("limits: {max_concurent_per_user: 5}\n")


def test_audit_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECS_EXEC_BOT_AUDIT_RETENTION_DAYS", "30")
    assert load_settings().audit_retention_days == 30
    monkeypatch.setenv("ECS_EXEC_BOT_AUDIT_RETENTION_DAYS", "-1")
    with pytest.raises(ConfigError, match="AUDIT_RETENTION_DAYS"):
        load_settings()


@pytest.mark.parametrize("text", [
    GOOD,
    "a: &base {x: 1, y: [2, 3]}\nb:\n  <<: *base\n  z: 4\n",  # a merge key: built by a second parse
    "# only a comment\n",
    "just text\n",
])
def test_one_parse_gives_what_safe_load_gives(text: str) -> None:
    import yaml

    from bot.config import parse_yaml_with_lines

    data, _ = parse_yaml_with_lines(text, "x.yaml")
    assert data == yaml.safe_load(text)


def test_line_numbers_read_the_tree_as_written_under_merge_keys() -> None:
    from bot.config import parse_yaml_with_lines

    # `b.x` comes from the anchor on line 1; the key is not written under `b`, so its line is b's (3).
    _, lines = parse_yaml_with_lines("a: &base\n  x: 1\nb:\n  <<: *base\n  z: 4\n", "x.yaml")
    assert lines.line(("b", "x")) == 3
    assert lines.line(("b", "z")) == 5
