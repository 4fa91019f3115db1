"""Follow-ups in the core: keep a run's redacted output, filter it for whom the policy allows, say why
not otherwise (expired, never kept, turned off), and audit all of it under the run's request id."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.audit import Auditor
from bot.config import BotConfig, parse_config
from bot.errors import PolicyDenied
from bot.output.capture import CapturedOutput
from bot.output.filters import OutputFilter
from bot.output.redact import Redactor
from bot.runner import ExecResult
from bot.runs.followups import FollowUpError, FollowUps
from bot.runs.ledger import RunLedger
from bot.store.base import AuditQuery, RunState
from bot.store.outputs import DirectoryOutputs
from bot.store.sqlite import SqliteStore
from bot.targets import Target
from tests.runs.support import order
from tests.store.support import FakeClock

CONFIG = """
environments: {prod: {region: us-east-1}}
services:
  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx}
  api: {environment: prod, cluster: prod, service: api}
followups: {keep_hours: 24}
policy:
  rules:
    - {name: oncall, users: [U0ALICE], groups: [S0SRE], channels: [C0INCIDENT], services: [web],
       commands: [{argv: [cat, "**"]}]}
    - {name: prod-approval, users: [U0DAVE], services: [web], commands: [{argv: [cat, "**"]}],
       approval: {approvers: {users: [U0BOB]}}}
    - {name: elsewhere, users: [U0ERIN], channels: [C0OTHER], services: [web], commands: [{argv: [ls]}]}
    - {name: api-only, users: [U0FRANK], services: [api], commands: [{argv: [ls]}]}
"""
LOG = (
    b'10.0.0.1 "GET / HTTP/1.1" 200\r\n\x1b[31m10.0.0.2 "GET /api HTTP/1.1" 502\x1b[0m\r\n'
    b'10.0.0.3 "POST /login password=hunter2hunter2" 502\r\n'
)
THREAD = "1700000000.000100"


def result(output: bytes, task_id: str = "3f2a9c0d1e2f") -> ExecResult:
    target = Target("prod", "prod", "web-nginx", f"arn:aws:ecs:us-east-1:1:task/prod/{task_id}", task_id, "nginx",
                    "rt", True)
    return ExecResult(target=target, command="cat /var/log/nginx/access.log", exit_code=0, status="ok",
                      duration_s=0.2, output=CapturedOutput.from_bytes(output), session_id="s-1")


@pytest.fixture
def config() -> BotConfig:
    return parse_config(CONFIG, source="followups.yaml")


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> SqliteStore:
    return SqliteStore(tmp_path / "bot.db", clock=clock)


@pytest.fixture
def followups(tmp_path: Path, config: BotConfig, store: SqliteStore, clock: FakeClock) -> FollowUps:
    auditor = Auditor(store, clock=clock)
    ledger = RunLedger(store, auditor, replica_id="r1", clock=clock)
    kept = DirectoryOutputs(tmp_path / "kept", clock=clock)
    return FollowUps(kept, config, ledger, auditor, Redactor(config.policy.redact), clock=clock)


async def finished_run(followups: FollowUps, store: SqliteStore, request_id: str = "req-1",
                       outputs: tuple[bytes, ...] = (LOG,)) -> None:
    run_order = order(request_id)
    ledger = followups._ledger
    record = await ledger.open_plain(run_order, 60)
    await ledger.finish(record, RunState.FINISHED, None)
    assert await followups.keep(run_order, [result(o, f"task{n}") for n, o in enumerate(outputs)], THREAD)


def audit_kinds(store: SqliteStore, request_id: str = "req-1") -> list[str]:
    return [e.kind for e in reversed(store.query_audit(AuditQuery(request_id=request_id)))]


async def test_a_filter_reads_the_kept_output_cleaned_and_redacted(followups: FollowUps, store: SqliteStore) -> None:
    await finished_run(followups, store)
    answer = await followups.filter("req-1", OutputFilter(" 502"), user="U0ALICE", groups=frozenset())
    [part] = answer.parts
    assert (part.result.total_lines, part.result.matched) == (3, 2)
    assert "\x1b" not in part.result.shown and "\r" not in part.result.shown
    assert "hunter2hunter2" not in part.result.shown and "GET /api" in part.result.shown
    # Someone in a group the rule names may filter too; the filter is audited under the run's id.
    await followups.filter("req-1", OutputFilter("x", count_only=True), user="U0BOB", groups=frozenset({"S0SRE"}))
    events = store.query_audit(AuditQuery(request_id="req-1"))
    filtered = [e for e in events if e.kind == "filtered"]
    assert {e.user for e in filtered} == {"U0ALICE", "U0BOB"}
    assert {e.details["filter"] for e in filtered} == {"' 502'", "-c x"}
    assert all(e.service == "web" and e.channel == "C0INCIDENT" for e in filtered)


async def test_a_rule_that_needs_approval_still_lets_you_filter(followups: FollowUps, store: SqliteStore) -> None:
    await finished_run(followups, store)
    answer = await followups.filter("req-1", OutputFilter("502"), user="U0DAVE", groups=frozenset())
    assert answer.matched == 2  # nothing runs: seeing what the channel already saw needs no approver


@pytest.mark.parametrize(
    "user",
    ["U0MALLORY",  # no rule at all
     "U0ERIN",  # a rule for the service, but in another channel
     "U0FRANK"],  # a rule in this channel, for another service
)
async def test_whom_the_policy_does_not_allow_there_is_refused_and_audited(
    followups: FollowUps, store: SqliteStore, user: str
) -> None:
    await finished_run(followups, store)
    with pytest.raises(PolicyDenied) as caught:
        await followups.filter("req-1", OutputFilter("502"), user=user, groups=frozenset())
    assert "may not filter its output" in caught.value.user_text()
    [refused] = [e for e in store.query_audit(AuditQuery(request_id="req-1")) if e.kind == "filter_refused"]
    assert refused.user == user and "may not" in str(refused.details["reason"])


async def test_an_expired_output_says_so(followups: FollowUps, store: SqliteStore, clock: FakeClock) -> None:
    await finished_run(followups, store)
    clock.advance(24 * 3600 + 1)
    with pytest.raises(FollowUpError) as caught:
        await followups.filter("req-1", OutputFilter("502"), user="U0ALICE", groups=frozenset())
    assert "has expired (outputs are kept for 24 hours)" in caught.value.user_text()
    assert audit_kinds(store)[-1] == "filter_refused"
    assert await followups.prune() == 1


async def test_a_run_never_kept_and_an_unknown_run_say_which(followups: FollowUps, store: SqliteStore) -> None:
    record = await followups._ledger.open_plain(order("req-2"), 60)
    await followups._ledger.finish(record, RunState.FAILED, "no running task")
    with pytest.raises(FollowUpError, match="was not kept"):
        await followups.filter("req-2", OutputFilter("x"), user="U0ALICE", groups=frozenset())
    with pytest.raises(FollowUpError, match="unknown to the bot"):
        await followups.filter("nope", OutputFilter("x"), user="U0ALICE", groups=frozenset())


async def test_the_thread_form_finds_the_threads_latest_run(followups: FollowUps, store: SqliteStore) -> None:
    await finished_run(followups, store, "req-1")
    await finished_run(followups, store, "req-2", outputs=(b"only 200s here\n",))
    assert await followups.thread_run("C0INCIDENT", THREAD) == "req-2"
    with pytest.raises(FollowUpError, match="No run in this thread"):
        await followups.thread_run("C0INCIDENT", "1700000000.999999")


async def test_a_fan_out_keeps_one_output_per_task(followups: FollowUps, store: SqliteStore) -> None:
    await finished_run(followups, store, outputs=(LOG, b"502 on the second task\n", b""))
    answer = await followups.filter("req-1", OutputFilter("502"), user="U0ALICE", groups=frozenset())
    assert [p.result.matched for p in answer.parts] == [2, 1, 0]
    assert [p.part.task_id for p in answer.parts] == ["task0", "task1", "task2"]


async def test_nothing_is_kept_when_turned_off_or_silent(
    tmp_path: Path, config: BotConfig, store: SqliteStore, clock: FakeClock, followups: FollowUps
) -> None:
    assert not await followups.keep(order("silent"), [result(b"")], THREAD)
    off_config = config.model_copy(update={"followups": config.followups.model_copy(update={"keep_hours": 0})})
    off = FollowUps(DirectoryOutputs(tmp_path / "off", clock=clock), off_config, followups._ledger,
                    Auditor(store, clock=clock), Redactor(()), clock=clock)
    assert not off.enabled and not await off.keep(order("x"), [result(LOG)], THREAD)
    with pytest.raises(FollowUpError, match="turned off"):
        await off.filter("x", OutputFilter("502"), user="U0ALICE", groups=frozenset())
