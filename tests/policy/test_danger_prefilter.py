"""``_danger``'s one-regex pre-check (``_MAYBE_DANGEROUS_ARG``) may only clear arguments that the checks
after it would clear too: it is compared here with those checks written out, on random words shaped like
the dangerous ones (any case, traversal anywhere, non-ASCII letters that lower-case to ASCII)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.command_patterns import DANGEROUS_ARG_PREFIXES, DANGEROUS_ARGS, _danger
from bot.shell_syntax import Word

MANY = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRAVERSAL = re.compile(r"(?:^|[/=:])\.\.(?:/|$)")


def written_out(value: str) -> bool:
    """The checks ``_danger`` makes for an argument of a program that is not awk, without the pre-check."""
    return bool(TRAVERSAL.search(value)) or value in DANGEROUS_ARGS or value.lower().startswith(
        DANGEROUS_ARG_PREFIXES)


def mixed_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def arguments(draw: st.DrawFn) -> str:
    known = sorted(DANGEROUS_ARGS) + list(DANGEROUS_ARG_PREFIXES)
    head = mixed_case(draw, draw(st.sampled_from(known)))
    head = head.replace("k", draw(st.sampled_from(["k", "\u212a"])))  # KELVIN SIGN lower-cases to `k`
    tail = draw(st.text(alphabet="=/.:-ab\n", max_size=6))
    return draw(st.sampled_from([head, head + tail, tail, "x/" + tail, tail + head]))


@MANY
@given(st.one_of(arguments(), st.text(max_size=12)))
@example("--chec\u212apoint-action=exec=sh")
@example("../x")
@example("-exec\n")
def test_the_pre_check_never_clears_a_dangerous_argument(value: str) -> None:
    refused = _danger(Word(value, value), 1, "grep") is not None
    assert refused == written_out(value), value
