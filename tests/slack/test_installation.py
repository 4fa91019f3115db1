"""Only the installation the bot token belongs to may use the bot: another workspace's (or app's) requests
verify with the same signing secret, and are refused before parsing or policy."""

from __future__ import annotations

import pytest

from handlers.installation import Installation, request_identity
from tests.slack.conftest import execute_command_calls
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import BotHarness

HOME = Installation(team_id="T0TEAM", app_id="A0APP")


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({"team_id": "T0TEAM", "api_app_id": "A0APP"}, False),  # slash command / event
        ({"team": {"id": "T0TEAM"}, "api_app_id": "A0APP"}, False),  # button, shortcut, modal
        ({"team_id": "T0OTHER", "api_app_id": "A0APP"}, True),
        ({"team_id": "T0TEAM", "api_app_id": "A0OTHER"}, True),
        ({"team_id": "T0TEAM"}, True),  # no app id at all
        ({"api_app_id": "A0APP"}, True),  # no team at all
        ({"team_id": "T0TEAM", "api_app_id": "A0APP", "enterprise_id": "E0OTHER"}, True),
        ({"team": {"id": "T0TEAM"}, "api_app_id": "A0APP", "enterprise": {"id": "E0OTHER"}}, True),
    ],
)
def test_which_requests_are_ours(body: dict, refused: bool) -> None:
    assert (HOME.refusal(body) is not None) is refused


def test_an_enterprise_install_checks_the_enterprise_too() -> None:
    grid = Installation(team_id="T0TEAM", app_id="A0APP", enterprise_id="E0ORG")
    assert grid.refusal({"team_id": "T0TEAM", "api_app_id": "A0APP", "enterprise_id": "E0ORG"}) is None
    assert request_identity({"team": {"id": "T1"}, "enterprise": None, "api_app_id": "A1"}) == ("T1", "A1", None)


async def test_a_command_from_another_workspace_is_refused_before_anything(
    bot: BotHarness, fake: FakeSlack
) -> None:
    ack = await bot.command("web echo hi", team_id="T0OTHER")
    assert ack.status == 200 and "serves only the Slack workspace it was installed for" in ack.body
    other_app = await bot.command("web echo hi", api_app_id="A0OTHER")
    assert "serves only the Slack workspace" in other_app.body
    assert execute_command_calls() == [] and fake.calls("chat.postMessage") == []
    ours = await bot.command("web echo hi")
    assert "Running" in ours.body  # the same request from home runs
