"""Start-up checks and the Web API client: token shapes, auth.test at boot, 429/5xx retries."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from bot.errors import ConfigError
from handlers.app import SlackSettings, build_web_client, check_token_shapes, verify_bot_token
from tests.support.fake_slack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        yield f


@pytest.mark.parametrize(
    ("bot", "app", "secret", "expected"),
    [
        (None, None, "s", "SLACK_BOT_TOKEN is not set"),
        ("", None, "s", "SLACK_BOT_TOKEN is not set"),
        ("xoxp-user-token", None, "s", "does not look like a bot token (it must start with xoxb-)"),
        ("xapp-1-abc", None, "s", "that is an app-level token"),
        ("xoxb-1 2", None, "s", "does not look like a bot token"),
        ("xoxb-123-abc", "xoxb-123-abc", None, "SLACK_APP_TOKEN does not look like an app-level token"),
        ("xoxb-123-abc", None, None, "SLACK_SIGNING_SECRET is not set"),
        ("xoxb-123-abc", None, "", "SLACK_SIGNING_SECRET is not set"),
    ],
)
def test_bad_tokens_fail_with_one_sentence(
    bot: str | None, app: str | None, secret: str | None, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        check_token_shapes(bot, app, secret)
    assert expected in err.value.user_text()
    assert "\n" not in err.value.user_text()


def test_good_token_shapes_pass_and_pick_the_mode() -> None:
    http = SlackSettings.from_settings(
        SimpleNamespace(
            slack_bot_token="xoxb-1-a",
            slack_app_token=None,
            slack_signing_secret="s",
            slack_api_url="http://x/api",
        )
    )
    assert not http.socket_mode and http.api_url == "http://x/api/"
    socket = SlackSettings.from_settings(
        SimpleNamespace(
            slack_bot_token="xoxb-1-a",
            slack_app_token="xapp-1-b",
            slack_signing_secret=None,
            slack_api_url=None,
        )
    )
    assert socket.socket_mode and socket.api_url == "https://slack.com/api/"


async def test_auth_test_at_boot_accepts_the_right_token(fake: FakeSlack) -> None:
    info = await verify_bot_token(build_web_client(fake.bot_token, fake.api_url))
    assert info["user_id"] == fake.bot_user_id


async def test_auth_test_at_boot_rejects_a_revoked_token(fake: FakeSlack) -> None:
    with pytest.raises(ConfigError) as err:
        await verify_bot_token(build_web_client("xoxb-revoked-token", fake.api_url))
    assert "Slack rejected SLACK_BOT_TOKEN at start-up (auth.test: invalid_auth)." in err.value.user_text()


async def test_unreachable_slack_is_one_sentence() -> None:
    with pytest.raises(ConfigError) as err:
        await verify_bot_token(build_web_client("xoxb-1-a", "http://127.0.0.1:9/api/"))
    assert err.value.user_text().startswith("Cannot reach the Slack Web API at http://127.0.0.1:9/api/")


async def test_429_is_retried_after_retry_after(fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=0, times=2)
    resp = await build_web_client(fake.bot_token, fake.api_url).chat_postMessage(channel="C1", text="hi")
    assert resp["ok"]
    calls = fake.calls("chat.postMessage")
    assert len(calls) == 3  # two 429s, then the post


async def test_server_errors_are_retried(fake: FakeSlack) -> None:
    from tests.support.fake_slack import Reply

    left = [1]

    def flaky(_call):  # type: ignore[no-untyped-def]
        if left[0]:
            left[0] -= 1
            return Reply({"ok": False, "error": "fatal_error"}, status=503)
        return None

    fake.overrides["chat.update"] = flaky
    ts = (await build_web_client(fake.bot_token, fake.api_url).chat_postMessage(channel="C1", text="a"))["ts"]
    await build_web_client(fake.bot_token, fake.api_url).chat_update(channel="C1", ts=ts, text="b")
    assert len(fake.calls("chat.update")) == 2
    assert fake.messages[ts]["text"] == "b"
