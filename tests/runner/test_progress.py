"""The runner's progress callback (live progress): a timer while the command runs, never per chunk, with
the exit sentinel kept out of the counters and the last lines."""

from __future__ import annotations

import pytest

from bot.runner import ExecProgress, ExecRunner
from bot.service_ref import resolve_service_ref
from bot.targets import resolve_targets
from standins.ecs import DemoCluster
from tests.support.local_aws import LocalAws


@pytest.mark.timeout(60)
async def test_progress_is_reported_while_the_command_runs(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    [target] = await resolve_targets(shared_aws.clients(), resolve_service_ref(None, "web-nginx", cluster="prod"))
    seen: list[ExecProgress] = []
    runner = ExecRunner(shared_aws.factory().for_environment, progress_interval=0.2)
    command = "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.3; done"
    result = await runner.run(target, command, timeout=30, on_progress=seen.append)
    assert result.status == "ok" and result.exit_code == 0
    assert seen, "no progress while a ~2 s command ran"
    assert [p.bytes for p in seen] == sorted(p.bytes for p in seen)  # counters only grow
    assert all(p.bytes <= result.output.total_bytes for p in seen)
    assert all("line-" in line for p in seen for line in p.tail_text.splitlines())  # no sentinel, no CR
    assert len(seen) < 100  # a timer, not a callback per output chunk


async def test_without_a_callback_nothing_is_reported(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    [target] = await resolve_targets(shared_aws.clients(), resolve_service_ref(None, "web-nginx", cluster="prod"))
    result = await ExecRunner(shared_aws.factory().for_environment, progress_interval=0.05).run(
        target, "echo quiet", timeout=30)
    assert result.text == "quiet\n"


async def test_a_failing_callback_never_ends_the_run(shared_aws: LocalAws, shared_demo: DemoCluster) -> None:
    [target] = await resolve_targets(shared_aws.clients(), resolve_service_ref(None, "web-nginx", cluster="prod"))

    def broken(progress: ExecProgress) -> None:
        raise RuntimeError("the adapter broke")

    result = await ExecRunner(shared_aws.factory().for_environment, progress_interval=0.05).run(
        target, "sleep 0.4; echo still-here", timeout=30, on_progress=broken)
    assert result.status == "ok" and "still-here" in result.text
