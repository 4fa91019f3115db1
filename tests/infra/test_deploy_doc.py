"""docs/deploy.md names only settings the bot reads and module inputs/outputs that exist."""

from __future__ import annotations

import re

from tests.infra.settings_names import settings_env_names
from tests.infra.terraform import REPO, all_modules

DOC = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")


def test_environment_names_in_the_doc_are_settings() -> None:
    used = set(re.findall(r"\b(ECS_EXEC_BOT_[A-Z_]+|SLACK_[A-Z_]+)\b", DOC))
    assert used and used <= settings_env_names(), f"unknown: {used - settings_env_names()}"


def test_terraform_names_in_the_doc_exist() -> None:
    names: set[str] = set()
    for module in all_modules().values():
        names |= set(module.labelled("variable")) | set(module.labelled("output"))
    mentioned = set(re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`", DOC))
    assert mentioned, "the doc names module inputs"
    assert mentioned <= names, f"not a variable or output of any infra module: {sorted(mentioned - names)}"


def test_paths_in_the_doc_exist() -> None:
    for path in set(re.findall(r"`((?:infra|docs|tests)/[\w./-]*)`", DOC)):
        if path == "docs/store.md":
            continue  # written by the store's owner
        assert (REPO / path).exists(), path
