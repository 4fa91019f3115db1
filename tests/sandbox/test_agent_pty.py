"""Real commands through the PTY: shlex-split exec, sandbox cwd, terminal size, Ctrl-C."""

from __future__ import annotations

import sys

import pytest

from bot.ssm.frames import PayloadType
from standins.agent import LocalAgent, SessionSpec
from standins.agent_pty import agent_environment
from tests.sandbox.raw_client import RawClient


async def run(agent: LocalAgent, command: str, *, stdin: list[bytes] = (), size: tuple[int, int] | None = None,
              **spec: object) -> tuple[bytes, RawClient]:
    r = agent.register(SessionSpec(command=command, **spec))  # type: ignore[arg-type]
    client = await RawClient.connect(r.stream_url, r.token)
    if size is not None:
        await client.send_size(*size)
    for data in stdin:
        await client.send_input(data)
    if client.next_seq:  # input sent before the PTY may be not-acked: resend until acked, in order
        await _resend_until_acked(client)
    t = await client.run_to_close()
    return bytes(t.output), client


async def _resend_until_acked(client: RawClient) -> None:
    # Input that reached the agent before its PTY started is not acked: resend each until it is.
    for seq, frame in enumerate(client.sent_frames):
        await client.wait_for_ack(seq, resend=frame)


async def test_printf_output_comes_back_through_the_pty(agent: LocalAgent) -> None:
    output, client = await run(agent, "printf 'hello\\nworld\\n'")
    assert output == b"hello\r\nworld\r\n"  # the PTY's ONLCR turns \n into \r\n
    assert client.t.closed is not None and client.t.closed["Output"] == ""


async def test_command_is_shlex_split_not_run_by_a_shell(agent: LocalAgent) -> None:
    output, _ = await run(agent, "printf '%s|' 'a b' c '$HOME' ';' ls")
    assert output == b"a b|c|$HOME|;|ls|"


async def test_cat_a_file_in_the_sandbox_dir(agent: LocalAgent) -> None:
    (agent.sandbox_dir / "notes.txt").write_text("line one\nline two\n")
    output, _ = await run(agent, "cat notes.txt")
    assert output == b"line one\r\nline two\r\n"


async def test_environment_has_term_and_the_spec_env(agent: LocalAgent) -> None:
    output, _ = await run(agent, "sh -c 'echo $TERM $GREETING'", env={"GREETING": "hi"})
    assert output == b"xterm-256color hi\r\n"
    assert agent_environment({}, {})["LANG"] == "C.UTF-8"
    assert agent_environment({"LANG": "de_DE.UTF-8"}, {})["LANG"] == "de_DE.UTF-8"
    assert agent_environment({}, {"TERM": "dumb"})["TERM"] == "xterm-256color"


async def test_terminal_size_sets_the_pty_size(agent: LocalAgent) -> None:
    output, _ = await run(agent, "sh -c 'read line; stty size'", size=(132, 43), stdin=[b"go\r"])
    assert output.endswith(b"43 132\r\n")


@pytest.mark.timeout(15)
async def test_ctrl_c_interrupts_sleep(agent: LocalAgent) -> None:
    r = agent.register(SessionSpec(command="sleep 30"))
    client = await RawClient.connect(r.stream_url, r.token)
    frame = await client.send_input(b"\x03")
    await client.wait_for_ack(0, resend=frame)  # acked once the PTY has it: SIGINT to sleep
    t = await client.run_to_close(limit=10)  # so the session ends long before 30 s
    assert t.closed is not None and t.closed["Output"] == ""
    assert "terminated" not in agent.stats(r.session_id).events


async def test_unknown_command_reports_on_stderr(agent: LocalAgent) -> None:
    r = agent.register(SessionSpec(command="no-such-command-xyz --flag"))
    client = await RawClient.connect(r.stream_url, r.token)
    t = await client.run_to_close()
    assert [m.payload_type for m in t.messages] == [PayloadType.STDERR]
    assert t.output.startswith(b"Unable to start command:") and b"no-such-command-xyz" in t.output


async def test_long_output_of_a_real_command_is_complete(agent: LocalAgent) -> None:
    output, _ = await run(agent, f"{sys.executable} -c \"import sys; sys.stdout.write('x' * 300000)\"")
    assert output == b"x" * 300000


@pytest.mark.timeout(15)
async def test_session_ends_with_the_command_even_if_a_background_child_holds_the_pty(agent: LocalAgent) -> None:
    output, client = await run(agent, "sh -c 'sleep 30 & echo started'")
    assert output == b"started\r\n" and client.t.closed is not None
