"""Data-channel faults through the real app (signed slash command → moto ECS → local agent → FakeSlack):
the agent drops the socket mid-stream, the network resets it, the agent never sends channel_closed.

In each: the user sees a clear outcome, the audit trail records it, and ExecuteCommand ran once.
"""

from __future__ import annotations

import asyncio

import boto3

from bot.ssm.channel import ChannelConfig, DataChannelSession, SessionParams
from bot.ssm.control import Boto3SessionControl
from bot.store.base import Store
from standins.agent_models import SessionSpec
from standins.agent_output import synthetic_output
from standins.ecs import SANDBOX
from tests.reliability.support import ResetProxy, audit_events, audit_kinds, execute_command_calls, wait_audit
from tests.slack.e2e_helpers import message_text
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness


def session_id_of(store: Store) -> str:
    [started] = [e for e in audit_events(store) if e.kind == "started"]
    return str(started.details["session_id"])


async def result_text(fake: FakeSlack) -> str:
    update = (await fake.await_for("chat.update"))[-1]
    return message_text(fake, str(update.params["ts"]))


async def test_agent_drops_mid_stream_the_session_resumes_and_nothing_is_lost(
    bot: BotHarness, fake: FakeSlack, local_aws: LocalAws
) -> None:
    with SANDBOX.lock:
        SANDBOX.session_options["faults"] = {"close_after": 20}  # abrupt close after 20 output messages
    await bot.command("web seq 1 30000")
    await wait_audit(bot.services.runs.store, "finished")
    text = await result_text(fake)
    assert "exit 0" in text and "internal error" not in text, text
    upload = (await fake.await_for("files.completeUploadExternal"))[0]
    lines = next(iter(fake.uploads.values())).decode().splitlines()
    assert lines[0] == "1" and lines[-1] == "30000" and len(lines) == 30000, upload.params
    stats = local_aws.agent.stats(session_id_of(bot.services.runs.store))
    assert "abrupt_close" in stats.events and stats.connections == 2
    assert len(execute_command_calls()) == 1
    assert audit_kinds(bot.services.runs.store) == ["requested", "started", "finished"]


async def test_a_network_reset_mid_stream_is_resumed_byte_exact(local_aws: LocalAws) -> None:
    """A middlebox reset (RST, no close frame) between the bot and ssmmessages: the client resumes the
    session with a new token and gets every byte once, in order."""
    ssm = boto3.client("ssm", endpoint_url=local_aws.agent.http_url, region_name="us-east-1")
    info = local_aws.agent.register_session(SessionSpec(synthetic_output_bytes=512 * 1024))
    agent_port = int(local_aws.agent.http_url.rsplit(":", 1)[1])
    received: list[bytes] = []
    async with ResetProxy(agent_port, reset_after=100 * 1024) as proxy:
        url = info.stream_url.replace(f":{agent_port}/", f":{proxy.port}/")
        session = DataChannelSession(
            SessionParams(info.session_id, url, info.token),
            on_output=received.append,
            control=Boto3SessionControl(ssm),
            config=ChannelConfig(resume_backoff=0.05, ping_interval=None, ping_timeout=None),
        )
        result = await asyncio.wait_for(session.run(), 60)
    assert proxy.resets == 1 and proxy.connections == 2 and result.resumes == 1
    assert b"".join(received) == synthetic_output(512 * 1024)
    assert result.closed_output == "" and result.missing_messages == 0


async def test_no_channel_closed_ends_in_terminate_session_and_a_clear_sentence(
    bot: BotHarness, fake: FakeSlack, local_aws: LocalAws
) -> None:
    with SANDBOX.lock:
        SANDBOX.session_options["faults"] = {"no_channel_closed": True}
    await bot.command("web --timeout 2 echo before-the-silence")
    await wait_audit(bot.services.runs.store, "failed")
    text = await result_text(fake)
    assert "before-the-silence" in text  # what did arrive is shown
    assert "timed out" in text, text  # and why it ended: the deadline, not a hang
    stats = local_aws.agent.stats(session_id_of(bot.services.runs.store))
    assert "terminated" in stats.events  # ssm:TerminateSession reached the service
    assert len(execute_command_calls()) == 1
    assert audit_kinds(bot.services.runs.store) == ["requested", "started", "failed"]
