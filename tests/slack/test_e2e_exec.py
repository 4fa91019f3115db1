"""End to end over real HTTP: signed slash commands → the real app → moto + the local agent → FakeSlack."""

from __future__ import annotations

from tests.slack.conftest import execute_command_calls
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import BotHarness


def message_text(fake: FakeSlack, ts: str) -> str:
    msg = fake.messages[ts]
    parts = [str(msg.get("text", ""))]
    for block in msg.get("blocks") or []:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text", "")))
        for el in block.get("elements") or []:
            if isinstance(el, dict) and "text" in el:
                parts.append(str(el["text"]))
    return "\n".join(parts)


async def test_allowed_command_posts_its_output_in_the_channel(bot: BotHarness, fake: FakeSlack) -> None:
    ack = await bot.command("web echo hello-from-the-task", response_url=fake.response_url("c1"))
    assert ack.status == 200
    assert "Running" in ack.body and "echo hello-from-the-task" in ack.body
    posted = await fake.await_for("chat.postMessage")
    assert posted[0].params["channel"] == "C0INCIDENT"
    await fake.await_for("chat.update")
    ts = posted[0].params and fake.calls("chat.update")[-1].params["ts"]
    text = message_text(fake, ts)
    assert "hello-from-the-task" in text
    calls = execute_command_calls()
    assert len(calls) == 1 and calls[0]["container"] == "nginx"
