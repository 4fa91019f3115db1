"""The stand-ins (fake agent, fake Slack, moto patches, demo data) are a separate package: the bot's wheel
and image never carry them, and the bot works without them (the demo says how to get them)."""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import pytest

from bot.cli import demo as demo_cli
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
_IMPORT = re.compile(r"^\s*(from|import)\s+standins\b", re.MULTILINE)


def test_the_bot_package_finds_only_the_bot() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["bot*", "handlers*"]
    assert "sandbox" not in project["project"].get("optional-dependencies", {})
    assert not (REPO / "bot" / "sandbox").exists() and not (REPO / "bot" / "demo").exists()


def test_only_the_demo_subcommand_reaches_for_the_stand_ins() -> None:
    importers = sorted(
        str(path.relative_to(REPO))
        for root in ("bot", "handlers")
        for path in (REPO / root).rglob("*.py")
        if _IMPORT.search(path.read_text(encoding="utf-8"))
    )
    assert importers == ["bot/cli/demo.py"]


def test_demo_without_the_stand_ins_says_how_to_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "standins", None)  # as if the package were not installed
    args = argparse.Namespace(interactive=False, color="never", full=False, verbose=False)
    with pytest.raises(ConfigError) as caught:
        demo_cli.run(args)
    assert "stand-ins" in caught.value.user_text() and "make demo" in caught.value.user_text()
