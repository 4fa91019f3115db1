"""The typed pattern automaton (``bot.argv_matchers.ArgvSequence``) decides and explains exactly as the
plain set-of-positions simulation in ``reference_sequence`` does, on random patterns (nested, optional and
repeated elements) and random commands (options, numbers, paths, unquoted globs)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.argv_matchers import ArgvSequence, Element, WordMatcher, first_programs
from bot.command_patterns import _element
from bot.shell_syntax import WILD_STAR, Word
from tests.policy.reference_sequence import reference_matches, reference_progress

MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

UNITS: list[object] = [
    "grep", "-n", "*", "-*", "/var/log/*", {"int": {"min": 1, "max": 100}}, {"flags": "-cinv"},
    {"path": "/var/log/**"}, {"path": "/app/*.log"}, {"one_of": ["a", "b"]}, {"glob": "x*"},
]
WORDS = ["grep", "-n", "-c", "-ic", "-x", "5", "500", "a", "b", "x1", "/var/log/a", "/app/x.log", "/app/.x.log",
         "/var/log/a/b", "//var/log/", "../x", f"/var/log/{WILD_STAR}", f"/app/{WILD_STAR}.log", f"x{WILD_STAR}",
         WILD_STAR]


@st.composite
def items(draw: st.DrawFn, depth: int = 0) -> object:
    if depth < 2 and draw(st.integers(0, 4)) == 0:
        inner = draw(st.lists(items(depth + 1), min_size=1, max_size=3))
        base: dict[str, object] = {"seq": inner}
    else:
        unit = draw(st.sampled_from(UNITS))
        if isinstance(unit, str) and draw(st.booleans()):
            return unit
        base = dict(unit) if isinstance(unit, dict) else {"glob": unit}
    if draw(st.booleans()):
        base["optional"] = True
    if draw(st.booleans()):
        base["repeat"] = True
    return base


@st.composite
def patterns(draw: st.DrawFn) -> tuple[Element, ...]:
    rest = draw(st.lists(items(), max_size=5))
    tail: list[object] = ["**"] if draw(st.integers(0, 5)) == 0 else []
    listed = ["grep", *rest, *tail]
    return tuple(_element(x, f"word {n}", last=n == len(listed)) for n, x in enumerate(listed, start=1))


commands = st.lists(st.sampled_from(WORDS), max_size=7).map(lambda ws: tuple(Word(w, w) for w in ["grep", *ws]))


def failures(found: list[tuple[WordMatcher, Word | None, bool]]) -> set[tuple[int, Word | None, bool]]:
    return {(id(unit), word, glob) for unit, word, glob in found}


@MANY
@given(patterns(), commands)
def test_the_automaton_agrees_with_the_simulation(elements: tuple[Element, ...], words: tuple[Word, ...]) -> None:
    sequence = ArgvSequence(elements, first_programs(elements))
    for relax in (False, True):
        assert sequence.matches(words, relax_glob_positions=relax) == reference_matches(elements, words, relax=relax)
    got, want = sequence.progress(words), reference_progress(elements, words)
    assert (got.furthest, got.end_ok_at) == (want.furthest, want.end_ok_at)
    assert sequence.read(words)[0] == want.furthest
    assert failures(got.failures) == failures(want.failures)
    assert set(got.expected()) == set(want.expected()) and set(got.why()) == set(want.why())


def test_a_repeated_sequence_is_read_in_linear_time() -> None:
    """Nested repeats that an ambiguous regex would backtrack through exponentially: 2,000 words and a
    refusal at the very end are read once (the reference simulation would take minutes here)."""
    nested = _element({"seq": [{"flags": "-cinv"}, {"seq": [{"flags": "-cin"}], "repeat": True}], "repeat": True},
                      "word 2", last=False)
    elements = (_element("grep", "word 1", last=False), nested, _element("/app/x", "word 3", last=True))
    sequence = ArgvSequence(elements, first_programs(elements))
    words = (Word("grep", "grep"), *[Word("-c", "-c")] * 2000, Word("/app/y", "/app/y"))
    assert not sequence.matches(words)
    assert sequence.read(words)[0] == 2001
    assert sequence.matches((*words[:-1], Word("/app/x", "/app/x")))
