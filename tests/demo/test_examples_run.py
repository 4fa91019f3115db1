"""The examples people copy (the bot's help, the demo's :help, the README) run in the demo as written.

They use the container's paths (/var/log/nginx/…); the stand-in agent maps those to the demo's sample
files, and output names them as the container would, not by this machine's temp dir.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.commands import EXAMPLE
from standins.demo.interactive import HELP, Slash, parse_line
from standins.demo.session import DemoSession
from standins.demo.stand_ins import TASK_DIR
from standins.demo.transcript import Style, event_lines

REPO = Path(__file__).resolve().parents[2]
ALICE = "U0ALICE"
PLAIN = Style(color=False, unicode=True, fold_code_lines=0)


def _examples(text: str, prefix: str) -> list[str]:
    """What follows ``prefix`` in each example of ``text`` (a backticked span or a line of its own)."""
    return re.findall(rf"(?:`|^){re.escape(prefix)} (web [^`\n]+)", text, re.M)


def _lines(path: str) -> list[str]:
    return (TASK_DIR / path.lstrip("/")).read_text().splitlines()


async def test_the_help_and_readme_examples_run_as_written() -> None:
    readme = (REPO / "README.md").read_text()
    help_example = _examples(EXAMPLE, "/ecs-exec")
    demo_help = parse_line(HELP.split("e.g.\n", 1)[1].splitlines()[0])
    readme_examples = _examples(readme.split("## What the channel sees", 1)[0], "/ecs-exec")
    readme_examples += _examples(readme, "@ecs-exec")
    assert help_example == ['web --reason "INC-123 5xx spike" tail -n 100 /var/log/nginx/error.log']
    assert isinstance(demo_help, Slash)
    assert readme_examples
    examples = [*help_example, demo_help.text, *readme_examples]

    async with DemoSession.running_demo() as demo:

        async def run(text: str) -> str:
            events = await demo.command(ALICE, text)
            return "\n".join(line for event in events for line in event_lines(event, demo.names, PLAIN))

        assert EXAMPLE in await run("help")
        for text in examples:
            transcript = await run(text)
            assert "✅ web (prod) · exit 0" in transcript, transcript
            assert f"┆ {_lines('/var/log/nginx/error.log')[-1]}" in transcript
        # The other examples of the issue: the whole log (long: head and tail, the rest in a file), a pipe,
        # a listing of the config directory.
        transcript = await run("web cat /var/log/nginx/access.log")
        assert f"┆ {_lines('/var/log/nginx/access.log')[-1]}" in transcript
        assert "full output (redacted) in the thread" in transcript
        n502 = sum(1 for line in _lines("/var/log/nginx/access.log") if "502" in line)
        assert f"┆ {n502}" in await run("web grep 502 /var/log/nginx/access.log | wc -l")
        assert "┆ nginx.conf" in await run("web ls /etc/nginx")
        # Errors name the container's path, never the sandbox on this machine.
        transcript = await run("web tail -n 1 /var/log/nginx/nope.log")
        assert "/var/log/nginx/nope.log" in transcript and "No such file or directory" in transcript
        assert str(demo.stand_ins.sandbox_dir) not in transcript
