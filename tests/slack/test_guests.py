"""Guests and people from other organisations (Slack Connect) are refused by default; a rule admits them
with `allow_guests: true`. The standing comes from users.info, cached."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.commands import parse_command_text
from bot.config import BotConfig, parse_config
from bot.runs.intake import decide
from bot.service_ref import ServiceRef
from handlers.app import build_web_client
from handlers.people import PeopleCache, standing_from
from tests.slack.conftest import build_services, execute_command_calls
from tests.support.fake_slack import FakeSlack, Reply
from tests.support.local_aws import LocalAws
from tests.support.slack_app import running_bot


@pytest.mark.parametrize(
    ("user", "standing"),
    [
        ({"id": "U1", "team_id": "T0TEAM"}, "member"),
        ({"id": "U1", "team_id": "T0TEAM", "is_restricted": True}, "guest"),
        ({"id": "U1", "team_id": "T0TEAM", "is_ultra_restricted": True}, "guest"),
        ({"id": "U1", "team_id": "T0PARTNER"}, "external"),
        ({"id": "U1", "team_id": "T0TEAM", "is_stranger": True}, "external"),
    ],
)
def test_standing_from_users_info(user: dict, standing: str) -> None:
    assert standing_from(user, "T0TEAM") == standing


def test_another_workspace_of_the_same_grid_org_is_not_external() -> None:
    colleague = {"id": "U1", "team_id": "T0OTHERWS", "enterprise_user": {"enterprise_id": "E0ORG"}}
    assert standing_from(colleague, "T0TEAM", "E0ORG") == "member"
    assert standing_from(colleague, "T0TEAM", "E0ELSE") == "external"
    assert standing_from({**colleague, "is_restricted": True}, "T0TEAM", "E0ORG") == "guest"


def _config(allow_guests: bool) -> BotConfig:
    rules = {"rules": [{"name": "oncall", "users": ["U0ALICE"], "services": ["web"], "allow_guests": allow_guests,
                        "commands": [{"argv": ["echo", "**"]}]}]}  # fmt: skip
    return SimpleNamespace(policy=parse_config(
        "environments: {prod: {region: us-east-1}}\n"
        "services: {web: {environment: prod, cluster: prod, service: web-nginx}}\n"
        f"policy: {rules!r}\n".replace("True", "true").replace("False", "false")
    ).policy)  # type: ignore[return-value]


@pytest.mark.parametrize("standing", ["guest", "external"])
def test_a_guest_is_refused_unless_the_rule_admits_guests(standing: str) -> None:
    ref = ServiceRef("web", "prod", "prod", "web-nginx")
    req = parse_command_text("web echo hi")
    kwargs = dict(user="U0ALICE", groups=frozenset(), channel="C1", ref=ref, req=req)
    assert decide(_config(False), **kwargs, standing="member").allowed  # type: ignore[arg-type]
    refused = decide(_config(False), **kwargs, standing=standing)  # type: ignore[arg-type]
    assert not refused.allowed and not refused.needs_approval and "by default" in refused.reason
    assert "allow_guests: true" in (refused.fix or "")
    assert decide(_config(True), **kwargs, standing=standing).allowed  # type: ignore[arg-type]


async def test_standings_are_cached_and_a_failed_lookup_is_external() -> None:
    with FakeSlack() as fake:
        fake.users = {"U0GUEST": {"id": "U0GUEST", "team_id": "T0TEAM", "is_restricted": True}}
        people = PeopleCache(build_web_client(fake.bot_token, fake.api_url), "T0TEAM")
        assert await people.standing_of("U0GUEST") == "guest"
        assert await people.standing_of("U0GUEST") == "guest"
        assert len(fake.calls("users.info")) == 1
        fake.overrides["users.info"] = lambda _call: Reply({"ok": False, "error": "user_not_found"})
        assert await people.standing_of("U0ALICE") == "external"  # deny by default
        del fake.overrides["users.info"]
        assert await people.standing_of("U0ALICE") == "member"  # a failure is not cached


async def test_a_guest_is_refused_end_to_end(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> None:
    fake.users = {"U0ALICE": {"id": "U0ALICE", "team_id": "T0TEAM", "is_restricted": True}}
    async with running_bot(fake, lambda c, i: _with_people(config, slack_aws, tmp_path, c, i)) as bot:
        ack = await bot.command("web echo hi")
    assert "guest of this workspace" in ack.body
    assert execute_command_calls() == []


def _with_people(config: BotConfig, aws: LocalAws, tmp_path: Path, client, info):  # type: ignore[no-untyped-def]
    return build_services(config, aws, tmp_path / "bot.db", client, people=PeopleCache(client, info["team_id"]))
