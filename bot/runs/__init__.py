"""The life of a run, Slack-free: order, intake, ledger, fan-out, executor, queue (docs/architecture.md).

The run record and its states are re-exported here: adapters read records through `bot.runs`, never
through the store package (listeners never touch the store).
"""

from bot.store.base import RunRecord, RunState

__all__ = ["RunRecord", "RunState"]
