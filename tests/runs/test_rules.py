"""The pure approval rules: who may approve, deny or cancel, and what each refusal tells them."""

from __future__ import annotations

import pytest

from bot.runs.approvals import (
    ApprovalError,
    approvers_text,
    is_eligible,
    judge_cancel,
    judge_deny,
    judge_vote,
    request_hash,
    votes_needed,
)
from bot.store.base import RunState, Vote
from tests.store.support import START, make_record

NOW = START + 10


def test_request_hash_binds_target_and_command_not_formatting() -> None:
    base = request_hash("prod", "web", "ls /", {"task": "abc", "container": "nginx"})
    assert base == request_hash("prod", "web", "ls /", {"container": "nginx", "task": "abc"})
    assert len(base) == 64
    others = {
        request_hash("prod", "web", "ls / ", {"task": "abc", "container": "nginx"}),
        request_hash("prod", "web", "ls /", {"task": "abd", "container": "nginx"}),
        request_hash("staging", "web", "ls /", {"task": "abc", "container": "nginx"}),
        request_hash("prod", "api", "ls /", {"task": "abc", "container": "nginx"}),
    }
    assert base not in others and len(others) == 4


def test_self_approval_is_refused_and_names_the_approvers() -> None:
    record = make_record(approver_users=("U0ALICE", "U0BOB"))
    with pytest.raises(ApprovalError, match="You cannot approve your own request") as info:
        judge_vote(record, "U0ALICE", (), NOW)
    # The requester is never offered as their own approver.
    assert info.value.fix == "Ask <@U0BOB> or a member of <!subteam^S0SRE>."


def test_the_requester_is_named_as_approver_only_under_break_glass() -> None:
    assert approvers_text(make_record(approver_users=("U0ALICE", "U0BOB"))) == (
        "<@U0BOB> or a member of <!subteam^S0SRE>")
    assert approvers_text(make_record(approver_users=("U0ALICE", "U0BOB"), allow_self_approval=True)) == (
        "<@U0ALICE> or <@U0BOB> or a member of <!subteam^S0SRE>")


def test_break_glass_self_approval_needs_the_rule_and_eligibility() -> None:
    allowed = make_record(allow_self_approval=True, approver_users=("U0ALICE",))
    assert judge_vote(allowed, "U0ALICE", (), NOW) is True
    assert judge_vote(allowed, "U0DAVE", ("S0SRE",), NOW) is False
    not_an_approver = make_record(allow_self_approval=True)
    with pytest.raises(ApprovalError, match="not an approver"):
        judge_vote(not_an_approver, "U0ALICE", (), NOW)


def test_non_approver_is_refused_group_member_accepted() -> None:
    record = make_record()
    with pytest.raises(ApprovalError, match="You are not an approver for rule oncall-logs"):
        judge_vote(record, "U0MALLORY", ("S0OTHER",), NOW)
    assert judge_vote(record, "U0DAVE", ("S0SRE",), NOW) is False
    assert is_eligible(record, "U0BOB", ()) and not is_eligible(record, "U0DAVE", ())


def test_an_approver_counts_once() -> None:
    record = make_record(min_approvals=2, votes=(Vote("U0BOB", START),))
    assert votes_needed(record) == 1
    with pytest.raises(ApprovalError, match="already approved") as info:
        judge_vote(record, "U0BOB", (), NOW)
    assert info.value.fix and info.value.fix.startswith("It needs 1 more approval from")


def test_expired_or_decided_requests_take_no_votes() -> None:
    with pytest.raises(ApprovalError, match="expired at 11:21 UTC"):
        judge_vote(make_record(), "U0BOB", (), START + 900)
    denied = make_record(state=RunState.DENIED, decided_by="U0CAROL")
    with pytest.raises(ApprovalError, match="was denied by <@U0CAROL>"):
        judge_vote(denied, "U0BOB", (), NOW)
    running = make_record(state=RunState.RUNNING, decided_by="U0CAROL")
    with pytest.raises(ApprovalError, match="already approved by <@U0CAROL>"):
        judge_vote(running, "U0BOB", (), NOW)


def test_deny_rules() -> None:
    record = make_record()
    with pytest.raises(ApprovalError, match="cannot deny your own") as info:
        judge_deny(record, "U0ALICE", (), NOW)
    assert info.value.fix == "Use Cancel to withdraw it."
    with pytest.raises(ApprovalError, match="Only approvers"):
        judge_deny(record, "U0MALLORY", (), NOW)
    judge_deny(record, "U0DAVE", ("S0SRE",), NOW)


def test_cancel_rules() -> None:
    with pytest.raises(ApprovalError, match="Only <@U0ALICE>, who made this request"):
        judge_cancel(make_record(), "U0BOB")
    judge_cancel(make_record(), "U0ALICE")
    judge_cancel(make_record(state=RunState.APPROVED), "U0ALICE")
    judge_cancel(make_record(state=RunState.RUNNING), "U0ALICE")  # its owner interrupts it
    with pytest.raises(ApprovalError, match="already ran"):
        judge_cancel(make_record(state=RunState.FINISHED), "U0ALICE")


def test_approvers_text_without_approvers() -> None:
    assert approvers_text(make_record(approver_users=(), approver_groups=())).startswith("nobody")
