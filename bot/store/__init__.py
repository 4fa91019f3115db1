"""Shared state for approvals, exactly-once claims, run slots and the audit trail.

`open_store(settings)` picks the backend named by ``Settings.store`` (``sqlite`` default, ``dynamodb``
for several replicas). The implementations are imported lazily so SQLite users never import boto3.
"""

from __future__ import annotations

from bot.store.base import (
    TERMINAL_STATES,
    TRANSITIONS,
    ApprovalRecord,
    ApprovalState,
    AuditEvent,
    AuditQuery,
    Store,
    Transition,
    Vote,
)

__all__ = [
    "TERMINAL_STATES",
    "TRANSITIONS",
    "ApprovalRecord",
    "ApprovalState",
    "AuditEvent",
    "AuditQuery",
    "Store",
    "Transition",
    "Vote",
]
