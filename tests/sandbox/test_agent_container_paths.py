"""Container paths through the real data channel: the bot's client, its exit-sentinel wrapper, the local agent.

`/var/log/nginx/access.log` is the sandbox's file, and output names it as the container would, never by
the host's temp path.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from bot.exit_sentinel import ExitSentinel
from standins.agent import LocalAgent, SessionSpec
from tests.sandbox.test_agent_e2e import channel

ACCESS_LOG = "".join(f"10.0.0.{i} - - \"GET /api/cart HTTP/1.1\" {502 if i % 3 == 0 else 200} 157\n"
                     for i in range(1, 10))


def _task_files(root: Path) -> None:
    (root / "var/log/nginx").mkdir(parents=True)
    (root / "var/log/nginx/access.log").write_text(ACCESS_LOG)
    (root / "etc/nginx").mkdir(parents=True)
    (root / "etc/nginx/nginx.conf").write_text("worker_processes  auto;\n")


async def _run(agent: LocalAgent, command: str) -> tuple[str, int | None]:
    """What the bot's runner does: wrap for the exit code, run, strip the sentinel."""
    sentinel = ExitSentinel.random()
    filt = sentinel.filter()
    sink = bytearray()
    await channel(agent, SessionSpec(command=sentinel.wrap(command, deadline_s=20)), sink).run()
    text = filt.feed(bytes(sink)) + filt.flush()
    return text.decode().replace("\r\n", "\n"), filt.exit_code


async def test_cat_a_container_path_reads_the_sandbox_file(agent: LocalAgent) -> None:
    _task_files(agent.sandbox_dir)
    assert await _run(agent, "cat /var/log/nginx/access.log") == (ACCESS_LOG, 0)
    assert await _run(agent, "grep 502 /var/log/nginx/access.log | wc -l") == ("3\n", 0)
    assert await _run(agent, "ls /etc/nginx") == ("nginx.conf\n", 0)


async def test_output_names_container_paths_not_the_host_temp_dir(agent: LocalAgent) -> None:
    _task_files(agent.sandbox_dir)
    output, code = await _run(agent, "cat /var/log/nginx/nope")
    assert output == "cat: /var/log/nginx/nope: No such file or directory\n" and code == 1
    output, _ = await _run(agent, "grep -c 502 /var/log/nginx/*.log /etc/nginx/nginx.conf")
    assert output == "/var/log/nginx/access.log:3\n/etc/nginx/nginx.conf:0\n"
    assert str(agent.sandbox_dir) not in output


async def test_a_path_built_at_run_time_is_the_hosts(agent: LocalAgent) -> None:
    # The documented cost: the mapping reads the command's text; it never sees what sh builds from it.
    name = f"ecs-exec-agent-test-{uuid.uuid4().hex}"  # in the task's /var, never in the host's
    (agent.sandbox_dir / "var" / name).mkdir(parents=True)
    assert await _run(agent, f"test -d /var/{name} && echo task") == ("task\n", 0)
    # A literal container path is mapped wherever it stands, even assigned to a variable...
    assert await _run(agent, f"p=/var; test -d $p/{name} && echo task") == ("task\n", 0)
    # ...but a path put together by the shell is not.
    assert await _run(agent, f"d=var; test -d /$d/{name} || echo host") == ("host\n", 0)


async def test_an_unresolvable_dot_dot_is_refused_before_anything_runs(agent: LocalAgent) -> None:
    marker = agent.sandbox_dir / "ran"
    sink = bytearray()
    spec = SessionSpec(command=f"sh -c 'touch {marker}; cat /var/log/\\.\\./\\.\\./etc/passwd'")
    await channel(agent, spec, sink).run()
    assert bytes(sink).startswith(b"Unable to start command: `..` in a word with a container path is refused")
    assert not marker.exists()
