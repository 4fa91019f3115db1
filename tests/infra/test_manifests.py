"""The two Slack app manifests: same app, one for Socket Mode and one for HTTP."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from bot.commands import SLASH_SUBCOMMANDS
from bot.output.render import RUN_SHORTCUT
from handlers.server.http import EVENTS_PATH
from tests.infra.terraform import INFRA

SCOPES = {
    "commands", "app_mentions:read", "chat:write", "chat:write.public", "files:write", "users:read",
    "usergroups:read",
}


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((INFRA / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


SOCKET = _load("slack-manifest.yml")
HTTP = _load("slack-manifest-http.yml")


@pytest.mark.parametrize("manifest", [SOCKET, HTTP], ids=["socket", "http"])
def test_scopes_command_and_interactivity(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"]["major_version"] == 1
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == SCOPES
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/ecs-exec"
    assert command["should_escape"] is False, "Slack must not rewrite @, # and links in the command text"
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # @ecs-exec in threads (handlers/mentions.py listens to it)
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_mention", "app_home_opened"]
    # App Home (handlers/home.py publishes it when opened)
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    # the "Run on ECS…" message shortcut (handlers/shortcuts.py routes on its callback id)
    (shortcut,) = manifest["features"]["shortcuts"]
    assert shortcut["type"] == "message" and shortcut["callback_id"] == RUN_SHORTCUT
    assert len(shortcut["name"]) <= 24 and len(shortcut["description"]) <= 150
    assert manifest["features"]["bot_user"]["display_name"]
    hint = command["usage_hint"]
    assert all(f"| {word}" in hint for word in SLASH_SUBCOMMANDS), "the hint lists the subcommands"


def test_socket_mode_variant_has_no_urls() -> None:
    assert SOCKET["settings"]["socket_mode_enabled"] is True
    assert "url" not in SOCKET["features"]["slash_commands"][0]
    assert "request_url" not in SOCKET["settings"]["interactivity"]
    assert "request_url" not in SOCKET["settings"]["event_subscriptions"]


def test_http_variant_points_both_urls_at_the_events_endpoint() -> None:
    assert HTTP["settings"]["socket_mode_enabled"] is False
    url = HTTP["features"]["slash_commands"][0]["url"]
    assert url == HTTP["settings"]["interactivity"]["request_url"]
    assert url == HTTP["settings"]["event_subscriptions"]["request_url"]
    assert url.startswith("https://") and url.endswith(EVENTS_PATH)


def test_variants_differ_only_in_how_slack_reaches_the_bot() -> None:
    def strip(manifest: dict[str, Any]) -> dict[str, Any]:
        m = copy.deepcopy(manifest)
        m["features"]["slash_commands"][0].pop("url", None)
        m["settings"]["interactivity"].pop("request_url", None)
        m["settings"]["event_subscriptions"].pop("request_url", None)
        m["settings"].pop("socket_mode_enabled")
        return m

    assert strip(SOCKET) == strip(HTTP)
