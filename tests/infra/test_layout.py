"""The rules of the house, checked on the import graph (statically, with ast):

- data flows one way: the core (`bot/`) never imports the Slack adapter (`handlers/`), except the two
  entry points that start it (`bot/cli/serve.py`) or drive it (`bot/cli/demo.py` via the stand-ins);
- the core imports no Slack SDK; the run lifecycle and the output seam in particular;
- listeners never touch the store: `handlers/` reaches runs (and their record type) through `bot.runs`,
  never `bot.store`;
- the store is reached only through `bot/runs/` and `bot/audit.py` (and the composition that opens it).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules(root: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(REPO)): _imports(path)
        for path in sorted((REPO / root).rglob("*.py"))
    }


def _importers(root: str, prefix: str) -> list[str]:
    return [
        name for name, imports in _modules(root).items()
        if any(i == prefix or i.startswith(prefix + ".") for i in imports)
    ]


def test_the_core_never_imports_the_slack_adapter() -> None:
    assert _importers("bot", "handlers") == ["bot/cli/serve.py"]


def test_the_core_imports_no_slack_sdk() -> None:
    assert _importers("bot", "slack_sdk") == [] and _importers("bot", "slack_bolt") == []


def test_listeners_never_touch_the_store() -> None:
    reach = [name for name, imports in _modules("handlers").items() for i in imports if i.startswith("bot.store")]
    assert reach == []


def test_the_store_is_reached_only_through_runs_and_audit() -> None:
    # Who may call Store methods: the ledger, the limits, the auditor; the composition and the CLI that
    # open a store (and hand it over) are listed by name.
    allowed = {
        "bot/audit.py", "bot/services.py", "bot/runs/ledger.py", "bot/runs/limits.py", "bot/cli/audit.py",
    }
    openers = {
        name for name, imports in _modules("bot").items()
        if any(i in ("bot.store.open_store", "bot.store.sqlite", "bot.store.dynamodb") for i in imports)
    }
    assert openers <= allowed | {"bot/store/__init__.py"}
    assert _importers("handlers", "bot.store.sqlite") == [] and _importers("handlers", "bot.store.dynamodb") == []


def test_one_action_id_per_button_kind() -> None:
    from bot.output import render

    ids = [render.APPROVE_ACTION, render.DENY_ACTION, render.CANCEL_ACTION, render.PROBE_ACTION]
    assert len(set(ids)) == 4
    source = (REPO / "handlers" / "actions.py").read_text(encoding="utf-8")
    assert "matchers=" not in source  # no button told apart from another by its value
