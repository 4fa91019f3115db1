"""The `runbooks:` section: what loads, and every refusal naming the file, the line and the fix."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from bot.errors import ConfigError

BASE = """\
environments:
  prod: {region: us-east-1}
services:
  api: {environment: prod, cluster: prod, service: api, timeout: 30}
  web: {environment: prod, cluster: prod, service: web-nginx, shell: false}
policy:
  rules:
    - name: oncall
      users: [U0ALICE]
      services: [api, web]
      commands:
        - argv: ["cat", "*"]
        - argv: ["df", "-h"]
      timeout: 60
    - name: admins
      users: [U0ROOT]
      services: [api]
      commands:
        - argv: ["printenv"]
runbooks:
"""
AT = BASE.count("\n")  # the line before the first runbook line appended to BASE

GOOD = BASE.replace('["printenv"]\n', '["printenv"]\n      runbooks: [granted]\n') + """\
  diag:
    description: the usual suspects
    services: [api, web]
    steps:
      - {name: health, command: cat health.txt, timeout: 10}
      - name: errors
        command: cat app.log
        extract: {count: 'ERROR|FATAL'}
      - {name: disk, command: df -h, extract: {regex: '(\\d+)% /$'}}
  granted:
    services: [api]
    tasks: one
    steps:
      - {name: anything, command: uname -a}
    approval:
      approvers: {users: [U0BOB]}
"""


def test_runbooks_load_with_their_steps_extractors_and_defaults() -> None:
    cfg = parse_config(GOOD, source="bot.yaml")
    diag = cfg.runbooks["diag"]
    assert [s.name for s in diag.steps] == ["health", "errors", "disk"]
    assert diag.tasks == "all" and diag.approval is None
    assert diag.steps[0].timeout == 10 and diag.steps[1].timeout is None
    assert diag.steps[1].extract is not None and diag.steps[1].extract.apply("ERROR a\nok\nFATAL b\n") == "2"
    assert diag.steps[2].extract is not None and diag.steps[2].extract.apply("/dev/x 9G 42% /\n") == "42"
    granted = cfg.runbooks["granted"]
    assert granted.tasks == "one" and granted.approval is not None
    assert cfg.policy.rules[1].runbooks == ("granted",)


def test_a_config_without_runbooks_has_none() -> None:
    assert parse_config(BASE.removesuffix("runbooks:\n"), source="bot.yaml").runbooks == {}


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="bot.yaml")
    return info.value.user_text()


def test_a_step_no_rule_could_ever_allow_is_refused_with_its_line_and_the_fix() -> None:
    text = _error(BASE + """\
  bad:
    services: [api]
    steps:
      - {name: ok, command: cat x}
      - {name: shell, command: rm -rf /}
""")
    assert f"bot.yaml, line {AT + 5}: runbooks.bad.steps.1.command:" in text, text
    assert "step 'shell' (`rm -rf /`) is allowed by no policy rule on service 'api'" in text
    assert "grant the runbook with `runbooks: [bad]`" in text


def test_a_step_allowed_on_one_service_but_not_another_is_refused_for_that_service() -> None:
    # printenv is allowed on api (admins) but on web by no rule.
    text = _error(BASE + """\
  env:
    services: [api, web]
    steps:
      - {name: env, command: printenv}
""")
    assert f"line {AT + 4}" in text and "on service 'web'" in text


def test_a_step_timeout_above_every_rule_limit_is_refused() -> None:
    text = _error(BASE + """\
  slow:
    services: [api]
    steps:
      - {name: health, command: cat x, timeout: 600}
""")
    assert f"line {AT + 4}" in text and "step 'health'" in text


def test_a_step_needing_a_shell_on_a_service_without_one_is_refused() -> None:
    text = _error(BASE + """\
  piped:
    services: [web]
    steps:
      - {name: piped, command: cat a | cat}
""")
    assert f"line {AT + 4}" in text and "on service 'web'" in text


@pytest.mark.parametrize(("extra", "line", "words"), [
    ("  x:\n    services: [nope]\n    steps:\n      - {name: a, command: cat a}\n", 2,
     "runbooks.x.services.0: unknown service 'nope' (known: api, web)"),
    ("  x:\n    services: [api]\n    steps:\n      - {name: a, command: cat a}\n      - {name: a, command: cat b}\n",
     1, "step name 'a' is used twice"),
    ("  x:\n    services: [api]\n    steps:\n      - {name: a, command: cat a, extract: {regex: '(a+)+$'}}\n",
     4, "runbooks.x.steps.0.extract"),
    ("  x:\n    services: [api]\n    steps:\n      - {name: a, command: cat a, extract: {regex: a, count: b}}\n",
     4, "exactly one of `regex:` or `count:`"),
    ("  x:\n    services: [api]\n    tasks: some\n    steps:\n      - {name: a, command: cat a}\n", 3,
     "runbooks.x.tasks"),
    ("  x:\n    services: [api]\n    steps: []\n", 3, "runbooks.x.steps"),
    ("  x:\n    services: [api]\n    steps:\n      - {name: a, command: cat a}\n    aproval: {}\n", 5,
     "runbooks.x.aproval: unknown key"),
    ("  x:\n    services: [api]\n    steps:\n      - {name: 'bad name', command: cat a}\n", 4,
     "step name 'bad name'"),
    ("  x:\n    services: [api]\n    steps:\n" + "".join(f"      - {{name: s{i}, command: cat a}}\n" for i in range(9)),
     3, "at most 8 items"),
    ("  'bad name':\n    services: [api]\n    steps:\n      - {name: a, command: cat a}\n", 1,
     "runbook name 'bad name'"),
])
def test_invalid_runbooks_name_the_line_and_the_problem(extra: str, line: int, words: str) -> None:
    text = _error(BASE + extra)
    assert f"bot.yaml, line {AT + line}:" in text, text
    assert words in text, text


def test_a_rule_granting_an_unknown_runbook_is_refused_at_its_line() -> None:
    text = _error(GOOD.split("  diag:")[0] + "  other:\n    services: [api]\n    steps:\n      - {name: a, command: cat a}\n")
    assert "line 20: policy.rules.1.runbooks.0: unknown runbook 'granted' (known: other)" in text, text
