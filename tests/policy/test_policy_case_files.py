"""The policy test files the docs ship are run here, the way an operator's CI runs theirs: the README's
example policy with docs/readme-policy-cases.yaml, and every cookbook recipe with its own cases."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.command_patterns import MatcherSpec

ROOT = Path(__file__).resolve().parents[2]
COOKBOOK = ROOT / "docs" / "policy-cookbook.md"
README_CASES = ROOT / "docs" / "readme-policy-cases.yaml"


def yaml_after(text: str, marker: str) -> str:
    assert marker in text, f"lost the {marker} marker"
    match = re.match(r"\s*```yaml\n(.*?)\n```", text.split(marker, 1)[1], re.DOTALL)
    assert match, f"no ```yaml block right after {marker}"
    return match.group(1)


def cookbook_recipes() -> list[str]:
    return re.findall(r"<!-- recipe: ([a-z-]+) -->", COOKBOOK.read_text(encoding="utf-8"))


def run_policy_test(tmp_path: Path, config: str, cases: str | Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = tmp_path / "bot.yaml"
    config_file.write_text(config)
    if isinstance(cases, str):
        cases_file = tmp_path / "cases.yaml"
        cases_file.write_text(cases)
        cases = cases_file
    status = main(["policy", "test", "--config", str(config_file), str(cases)])
    out = capsys.readouterr()
    assert status == 0, out.out + out.err
    assert out.out.strip().endswith(" failed") and ", 0 failed" in out.out


def test_readme_example_policy_passes_its_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    run_policy_test(tmp_path, yaml_after(readme, "<!-- config-example -->"), README_CASES, capsys)


def test_the_cookbook_has_the_recipes_the_issue_asks_for() -> None:
    assert {"logs", "config-files", "processes", "network", "filters"} <= set(cookbook_recipes())


@pytest.mark.parametrize("recipe", cookbook_recipes())
def test_cookbook_recipe_passes_its_cases(recipe: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = COOKBOOK.read_text(encoding="utf-8")
    config = yaml_after(text, "<!-- cookbook-catalogue -->") + "\n" + yaml_after(text, f"<!-- recipe: {recipe} -->")
    cases = yaml_after(text, f"<!-- cases: {recipe} -->")
    assert len(yaml.safe_load(cases)["cases"]) >= 3
    run_policy_test(tmp_path, config, cases, capsys)


def test_a_failing_case_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The runner above can fail: flip one expectation of the README cases."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (tmp_path / "bot.yaml").write_text(yaml_after(readme, "<!-- config-example -->"))
    flipped = tmp_path / "flipped.yaml"
    flipped.write_text(README_CASES.read_text().replace("expect: deny", "expect: allow", 1))
    assert main(["policy", "test", "--config", str(tmp_path / "bot.yaml"), str(flipped)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_the_cookbook_shows_every_matcher_key_and_position() -> None:
    text = COOKBOOK.read_text(encoding="utf-8")
    recipes = [yaml.safe_load(yaml_after(text, f"<!-- recipe: {r} -->")) for r in cookbook_recipes()]
    keys: set[str] = set()
    positions: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            keys.update(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for recipe in recipes:
        for rule in recipe["policy"]["rules"]:
            for pattern in rule["commands"]:
                positions.add(pattern.get("position", "any"))
                walk(pattern.get("argv", []))
    expected = {field.alias or name for name, field in MatcherSpec.model_fields.items()} - {"glob"}
    assert expected <= keys, sorted(expected - keys)
    assert positions == {"any", "first", "filter"}
