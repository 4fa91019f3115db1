"""A connection reset after the command's last output and before ``channel_closed``, with ResumeSession then
finding the session over, is a sequence the real service can produce (a reset is a reset, and MGS keeps
nothing for a client that comes back after the end). It happened to 2-20 % of sessions under 200
concurrent ones (`benchmarks/concurrent_sessions.py`). When the exit sentinel was already seen, the
command had finished and every byte of its output had arrived in order: the run is not an error."""

from __future__ import annotations

import dataclasses

from bot.runner import ExecRunner
from bot.ssm.errors import SessionExpiredError
from standins.ecs import SANDBOX, DemoCluster
from tests.runner.test_exec_e2e import first_target
from tests.support.local_aws import LocalAws

COMMAND = "seq 1 2000; exit 3"
EXPECTED = "".join(f"{n}\n" for n in range(1, 2001))


async def test_reset_after_the_exit_code_still_gives_output_and_exit_code(
        shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    SANDBOX.session_options["faults"] = {"reset_at_end": True}
    target = await first_target(shared_aws)
    result = await ExecRunner(shared_aws.factory().for_environment).run(target, COMMAND, timeout=30)
    assert result.error is None, result.error.user_text()
    assert (result.status, result.exit_code, result.text) == ("failed", 3, EXPECTED)
    assert result.note is not None and "finished (exit code 3)" in result.note
    assert "ended while the data channel was disconnected" in result.note  # what the channel reported


async def test_without_a_sentinel_the_same_reset_stays_an_error_that_says_what_arrived(
        shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    SANDBOX.session_options["faults"] = {"reset_at_end": True}
    target = dataclasses.replace(await first_target(shared_aws), shell=False)  # no exit code to go by
    result = await ExecRunner(shared_aws.factory().for_environment).run(target, "seq 1 2000", timeout=30)
    assert result.status == "error" and isinstance(result.error, SessionExpiredError)
    assert result.note is None and result.text == EXPECTED  # what did arrive is kept
    assert f"{result.output.total_bytes:,} bytes of output received" in result.error.message
    assert "ConnectionResetError" in result.error.message  # the drop, named down to the socket error


async def test_an_error_in_channel_closed_after_the_exit_code_stays_an_error(
        shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    SANDBOX.session_options["faults"] = {"channel_closed_error": "Session terminated by the agent."}
    target = await first_target(shared_aws)
    result = await ExecRunner(shared_aws.factory().for_environment).run(target, "true", timeout=30)
    assert result.status == "error" and result.note is None
