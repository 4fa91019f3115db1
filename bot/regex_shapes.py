"""The shape of a regular expression an operator writes (policy file, runbooks): what every match
starts with, and whether it could backtrack exponentially. Pure functions over ``re``'s own parser.

Lives apart from ``bot.output.redact`` (which uses both) so that `ecs-exec-bot policy` can check a
policy's patterns without importing the redactor.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from bot.errors import ConfigError

try:  # the parser behind ``re``; public name since 3.11 is re._parser
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older layouts
    import sre_parse as _sre_parse

_MAX_PREFIXES = 64


def literal_prefixes(pattern: re.Pattern[str]) -> tuple[str, ...]:
    """Lower-case literals that every match of ``pattern`` starts with ((): none could be derived).

    Small character classes and alternations are expanded (``gh[pousr]_`` → ``ghp_``, ``gho_``, …); a
    prefix that extends another of the set is dropped, since the shorter one already finds it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # see check_pattern: policy-file patterns come here too
        tree = _sre_parse.parse(pattern.pattern, pattern.flags)
    prefixes, _ = _expand(tree, [""])
    if not prefixes or "" in prefixes:
        return ()
    lowered = sorted({p.lower() for p in prefixes}, key=len)
    kept: list[str] = []
    for p in lowered:
        if not any(p.startswith(k) for k in kept):
            kept.append(p)
    return tuple(kept)


def _expand(items: Any, prefixes: list[str]) -> tuple[list[str], bool]:
    """Extend ``prefixes`` through the leading literal part of ``items``; bool: all of ``items`` was literal."""
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            prefixes = [p + chr(av) for p in prefixes]
            continue
        if name == "IN":
            chars = _class_chars(av)
            if chars is None or len(prefixes) * len(chars) > _MAX_PREFIXES:
                return prefixes, False
            prefixes = [p + c for p in prefixes for c in chars]
            continue
        if name == "SUBPATTERN":
            prefixes, complete = _expand(av[-1], prefixes)
            if not complete:
                return prefixes, False
            continue
        if name == "BRANCH":
            out: list[str] = []
            complete = True
            for branch in av[1]:
                extended, branch_complete = _expand(branch, prefixes)
                out.extend(extended)
                complete = complete and branch_complete
            if len(out) > _MAX_PREFIXES:
                return prefixes, False
            prefixes = out
            if not complete:
                return prefixes, False
            continue
        return prefixes, False
    return prefixes, True


def _class_chars(items: Any) -> list[str] | None:
    chars: list[str] = []
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            chars.append(chr(av))
        elif name == "RANGE" and av[1] - av[0] < _MAX_PREFIXES:
            chars.extend(chr(c) for c in range(av[0], av[1] + 1))
        else:
            return None
    return chars if len(chars) <= 32 else None


# --- assignments: password=…, "token": "…", api_key: …, --password … ----------------------------------

# After the key: an optional closing quote (possibly JSON-escaped), then one separator.


_KIND_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,40}")  # as bot.policy.RedactPattern allows


def check_pattern(name: str, pattern: str) -> re.Pattern[str]:
    """Compile a policy-file pattern, refusing what could make redaction slow (ConfigError otherwise).

    Refused: back-references, look-arounds containing repeats, and a repeat nested inside another
    unbounded repeat (``(a+)+``, ``(?:\\w+\\s?)*``): the shapes behind catastrophic backtracking.
    """
    if not _KIND_NAME.fullmatch(name):
        raise ConfigError(f"Redaction pattern name {name!r} is not a short lower-case name.",
                          fix="Use lower-case letters, digits, dashes and underscores, e.g. internal-token.")
    try:
        with warnings.catch_warnings():
            # `re` warns about syntax whose meaning may change ("possible nested set"); the pattern still
            # compiles to what it means today, and a warning is no way to tell a policy author anything.
            warnings.simplefilter("ignore", FutureWarning)
            compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"Redaction pattern {name!r} is not a valid regular expression ({exc}).",
                          fix="Fix the pattern in the policy file's redact section.") from exc
    problem = backtracking_problem(pattern)
    if problem:
        raise ConfigError(f"Redaction pattern {name!r} could take exponential time ({problem}).",
                          fix="Rewrite it without nested repeats or back-references, e.g. 'itk_[A-Za-z0-9]{32}'.")
    if compiled.search("") is not None:
        raise ConfigError(f"Redaction pattern {name!r} matches the empty string.",
                          fix="Make it match at least one character.")
    return compiled


def backtracking_problem(pattern: str) -> str | None:
    """What could make ``pattern`` (which must compile) take exponential time, or None. Shared with the
    policy's ``regex:`` command patterns, which run on the ack path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # see check_pattern
        tree = _sre_parse.parse(pattern)
    return _backtracking_risk(tree, inside_unbounded=False)


def _backtracking_risk(items: Any, *, inside_unbounded: bool) -> str | None:
    max_repeat = _sre_parse.MAXREPEAT
    for op, av in items:
        name = str(op)
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            return "back-reference"
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            unbounded = hi == max_repeat or hi > 1000
            if inside_unbounded and hi > 1:
                return "a repeat inside an unbounded repeat"
            found = _backtracking_risk(sub, inside_unbounded=inside_unbounded or unbounded)
            if found:
                return found
        elif name == "SUBPATTERN":
            found = _backtracking_risk(av[-1], inside_unbounded=inside_unbounded)
            if found:
                return found
        elif name == "BRANCH":
            if inside_unbounded and not _branches_start_apart(av[1]):
                return "alternatives that can start alike inside a repeat"
            for branch in av[1]:
                found = _backtracking_risk(branch, inside_unbounded=inside_unbounded)
                if found:
                    return found
        elif name in ("ASSERT", "ASSERT_NOT"):
            found = _backtracking_risk(av[1], inside_unbounded=True)
            if found:
                return "look-around with a repeat"
        elif name == "ATOMIC_GROUP":
            found = _backtracking_risk(av, inside_unbounded=inside_unbounded)
            if found:
                return found
    return None


def _branches_start_apart(branches: Any) -> bool:
    """True if every alternative starts with known literal characters no other alternative starts with."""
    seen: set[str] = set()
    for branch in branches:
        prefixes, _ = _expand(branch, [""])
        firsts = {p[0] for p in prefixes if p}
        if not firsts or "" in prefixes or firsts & seen:
            return False
        seen |= firsts
    return True
