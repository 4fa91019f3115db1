"""What the command builder offers (pure): services and patterns from the policy, the pre-fill of a
pattern, the modal at each step, and the text a submission becomes."""

from __future__ import annotations

import json

import pytest

from bot.builder import BuilderState, builder_view, command_text
from bot.command_patterns import RegexPattern, compile_argv, literal_prefix
from bot.commands import ExecRequest, parse_command_text
from bot.config import parse_config

CONFIG = """
environments:
  prod: {region: us-east-1}
  staging: {region: us-east-1}
services:
  web: {environment: prod, cluster: prod, service: web}
  api: {environment: prod, cluster: prod, service: api}
  jobs: {environment: staging, cluster: staging, service: jobs}
policy:
  rules:
    - name: incident-web
      users: [U0ALICE]
      channels: [C0INCIDENT]
      services: [web]
      commands:
        - argv: ["tail", "-n", "*", "/var/log/nginx/*"]
        - argv: ["id"]
    - name: staging
      groups: [S0DEVS]
      environments: [staging]
      commands:
        - argv: ["ls", {"path": "/app/**"}]
    - name: api-approval
      users: [U0ALICE]
      services: [api]
      commands:
        - argv: ["id"]
      approval: {approvers: {users: [U0BOB]}}
    - name: sidecar-only
      users: [U0ALICE]
      services: [jobs]
      containers: [envoy]
      commands:
        - argv: ["id"]
"""
META = '{"channel": "C0INCIDENT"}'


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return parse_config(CONFIG, source="builder.yaml")


def services(view) -> list[str]:  # type: ignore[no-untyped-def]
    return [alias for alias, _ in view.services]


def test_services_offered_follow_user_groups_channel_and_container(config) -> None:  # type: ignore[no-untyped-def]
    here = builder_view(config, "U0ALICE", frozenset(), BuilderState("C0INCIDENT"), META)
    assert services(here) == ["api", "web"]  # jobs: her rule reaches only a sidecar, the builder never adds one
    elsewhere = builder_view(config, "U0ALICE", frozenset(), BuilderState("C0OTHER"), META)
    assert services(elsewhere) == ["api"] and elsewhere.service == "api"  # one choice: made for her
    home = builder_view(config, "U0ALICE", frozenset(), BuilderState(None, from_home=True), META)
    assert services(home) == ["api", "web"] and home.channel_picker
    dev = builder_view(config, "U0DEV", frozenset({"S0DEVS"}), BuilderState("C0OTHER"), META)
    assert services(dev) == ["jobs"] and dev.service == "jobs"
    nobody = builder_view(config, "U0MALLORY", frozenset(), BuilderState("C0OTHER"), META)
    assert nobody.services == () and nobody.note and "No policy rule" in nobody.note
    # Slack was slow to say which groups: every service, no patterns (the submission decides).
    slow = builder_view(config, "U0DEV", None, BuilderState("C0OTHER", service="web"), META)
    assert services(slow) == ["api", "jobs", "web"] and slow.patterns == ()


def test_patterns_of_the_chosen_service_and_the_prefill(config) -> None:  # type: ignore[no-untyped-def]
    view = builder_view(config, "U0ALICE", frozenset(), BuilderState("C0INCIDENT", service="web"), META)
    assert view.patterns == (("0", "tail -n * /var/log/nginx/*"), ("1", "id"))
    assert view.prefill == "" and view.pattern is None
    chosen = builder_view(config, "U0ALICE", frozenset(), BuilderState("C0INCIDENT", service="web", pattern="0"), META)
    assert chosen.pattern == "0" and chosen.prefill == "tail -n "
    api = builder_view(config, "U0ALICE", frozenset(), BuilderState("C0INCIDENT", service="api"), META)
    assert api.patterns == (("0", "id · approval"),)
    # A service not offered (any more) is dropped, not trusted.
    forged = builder_view(config, "U0ALICE", frozenset(), BuilderState("C0OTHER", service="web", pattern="0"), META)
    assert forged.service == "api" and forged.prefill == ""


@pytest.mark.parametrize(("argv", "prefix"), [
    (["tail", "-n", "*", "/var/log/*"], "tail -n "),
    (["id"], "id"),
    (["echo", "**"], "echo "),
    (["cat", "/var/log/app.log"], "cat /var/log/app.log"),
    (["grep", "a b", "*"], "grep 'a b' "),
    (["*.sh"], ""),
    (["ls", {"path": "/app/**"}], "ls "),
    (["ls", {"flags": "-la"}, {"path": "/app/**"}], "ls "),
])
def test_literal_prefix(argv: list[object], prefix: str) -> None:
    assert literal_prefix(compile_argv(argv)) == prefix


def test_a_regex_pattern_prefills_nothing() -> None:
    assert literal_prefix(RegexPattern("echo [a-z]+")) == ""


def test_command_text_is_what_a_user_would_type() -> None:
    text = command_text("web", "  tail -n 5 /var/log/nginx/error.log ", "INC-7 it's 502s")
    parsed = parse_command_text(text)
    assert isinstance(parsed, ExecRequest)
    assert (parsed.service, parsed.command, parsed.reason) == ("web", "tail -n 5 /var/log/nginx/error.log",
                                                              "INC-7 it's 502s")
    assert command_text("web", "id", "  ") == "web id"


def test_metadata_is_carried_as_given(config) -> None:  # type: ignore[no-untyped-def]
    view = builder_view(config, "U0ALICE", frozenset(), BuilderState("C0INCIDENT"), META)
    assert json.loads(view.private_metadata) == {"channel": "C0INCIDENT"}
