"""Read the repository's Terraform with python-hcl2 into plain Python values, and pull out what the infra
tests check: modules, variables, resources, and the statements of every ``aws_iam_policy_document``.

python-hcl2 keeps HCL's quoting: ``"foo"`` comes back as ``'"foo"'`` while an expression comes back as
``'${...}'``. ``normalize`` strips the quotes of literal strings and block labels and drops the parser's
bookkeeping keys, so a literal is a plain ``str`` and anything still starting with ``${`` is an expression
Terraform evaluates (which these tests can only inspect as text).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

_BOOKKEEPING = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}


def normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {unquote(k): normalize(v) for k, v in value.items() if k not in _BOOKKEEPING}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str):
        return unquote(value)
    return value


def unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text[1:-1]
    return text


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def parse_hcl(text: str) -> dict[str, Any]:
    return normalize(hcl2.loads(text))


@dataclass
class Module:
    """The merged top-level blocks of every ``.tf`` file in one directory."""

    path: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def blocks(self, kind: str) -> list[Any]:
        return [block for doc in self.files.values() for block in doc.get(kind, [])]

    def labelled(self, kind: str) -> dict[str, Any]:
        """``variable``/``output``/``module`` blocks: ``{label: body}``."""
        out: dict[str, Any] = {}
        for block in self.blocks(kind):
            for label, body in block.items():
                assert label not in out, f"{self.path}: {kind} {label!r} declared twice"
                out[label] = body
        return out

    def typed(self, kind: str) -> dict[tuple[str, str], Any]:
        """``resource``/``data`` blocks: ``{(type, name): body}``."""
        out: dict[tuple[str, str], Any] = {}
        for block in self.blocks(kind):
            for type_, named in block.items():
                for name, body in named.items():
                    out[(type_, name)] = body
        return out

    def locals(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for block in self.blocks("locals"):
            out.update(block)
        return out

    def text(self) -> str:
        """All parsed content as one JSON string (comments excluded), for reference checks."""
        return json.dumps(self.files, sort_keys=True)


def load_module(path: Path) -> Module:
    module = Module(path)
    for tf in sorted(path.glob("*.tf")):
        module.files[tf.name] = parse_hcl(tf.read_text(encoding="utf-8"))
    return module


@cache
def _modules() -> dict[str, Module]:
    dirs = sorted({tf.parent for tf in INFRA.rglob("*.tf")})
    return {str(d.relative_to(INFRA)): load_module(d) for d in dirs}


def all_modules() -> dict[str, Module]:
    """Every directory under infra/ that holds ``.tf`` files, keyed by its path relative to infra/."""
    return _modules()


# ---- IAM policy documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    where: str  # "module: data.aws_iam_policy_document.name[sid]"
    effect: str
    actions: tuple[str, ...] | str  # a tuple of literals, or an expression string
    resources: tuple[str, ...] | str
    conditions: tuple[dict[str, Any], ...]
    has_principals: bool  # trust/resource policy (principals given) rather than an identity policy
    dynamic: bool


def _as_tuple(value: Any) -> tuple[str, ...] | str:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(value)
    return value  # an expression such as "${var.cluster_arns}"


def _statement(where: str, body: dict[str, Any], *, dynamic: bool) -> Statement:
    conditions = list(body.get("condition", []))
    for dyn in body.get("dynamic", []):
        for label, dyn_body in dyn.items():
            if label == "condition":
                conditions.extend(dyn_body.get("content", []))
    return Statement(
        where=f"{where}[{body.get('sid', '?')}]",
        effect=body.get("effect", "Allow"),
        actions=_as_tuple(body.get("actions")),
        resources=_as_tuple(body.get("resources")),
        conditions=tuple(conditions),
        has_principals=bool(body.get("principals")),
        dynamic=dynamic,
    )


def policy_statements(module: Module, name: str | None = None) -> list[Statement]:
    """Statements of the module's ``aws_iam_policy_document`` data sources (all, or the one named)."""
    out: list[Statement] = []
    for (type_, doc_name), body in module.typed("data").items():
        if type_ != "aws_iam_policy_document" or (name is not None and doc_name != name):
            continue
        label = module.path.relative_to(INFRA) if module.path.is_relative_to(INFRA) else module.path.name
        where = f"{label}: data.aws_iam_policy_document.{doc_name}"
        for stmt in body.get("statement", []):
            out.append(_statement(where, stmt, dynamic=False))
        for dyn in body.get("dynamic", []):
            for label, dyn_body in dyn.items():
                if label == "statement":
                    for content in dyn_body.get("content", []):
                        out.append(_statement(where, content, dynamic=True))
    return out


def literal_actions(statements: list[Statement]) -> set[str]:
    return {a for s in statements if isinstance(s.actions, tuple) for a in s.actions}


# ---- module references -----------------------------------------------------------------------------------

_VAR_REF = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
_LOCAL_REF = re.compile(r"\blocal\.([A-Za-z_][A-Za-z0-9_-]*)")
_MODULE_OUTPUT_REF = re.compile(
    r"\bmodule\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[[^\]]*\])?\.([A-Za-z_][A-Za-z0-9_-]*)"
)


def referenced_variables(module: Module) -> set[str]:
    return set(_VAR_REF.findall(module.text()))


def referenced_locals(module: Module) -> set[str]:
    return set(_LOCAL_REF.findall(module.text()))


def referenced_module_outputs(module: Module) -> set[tuple[str, str]]:
    return set(_MODULE_OUTPUT_REF.findall(module.text()))
