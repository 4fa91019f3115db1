"""``bot.fast_init``: the faster ``__init__`` builds the same frozen dataclass the generated one would."""

from __future__ import annotations

import dataclasses

import pytest

from bot.command_patterns import Closest
from bot.fast_init import fast_init
from bot.policy import Decision
from bot.shell_syntax import Refusal


@dataclasses.dataclass(frozen=True)
class Plain:
    a: int
    b: str = "x"
    c: tuple[int, ...] | None = None


Fast = fast_init(dataclasses.make_dataclass("Fast", [("a", int), ("b", str, dataclasses.field(default="x")),
                                                     ("c", tuple[int, ...] | None, dataclasses.field(default=None))],
                                            frozen=True))


def test_it_builds_what_the_generated_init_builds() -> None:
    for args, kwargs in (((1,), {}), ((1, "y"), {}), ((1,), {"c": (2,)}), ((), {"a": 3, "b": "z", "c": None})):
        plain, fast = Plain(*args, **kwargs), Fast(*args, **kwargs)
        assert dataclasses.astuple(plain) == dataclasses.astuple(fast)
        assert repr(fast) == repr(plain).replace("Plain", "Fast")
        assert fast == Fast(*args, **kwargs) and hash(fast) == hash(Fast(*args, **kwargs))
    with pytest.raises(TypeError):
        Fast()  # type: ignore[call-arg]  # a required field is still required
    with pytest.raises(TypeError):
        Fast(1, "x", None, 4)  # type: ignore[call-arg]  # and no more than the fields


def test_the_class_stays_frozen_and_replace_works() -> None:
    decision = Decision(False, False, "r", "reason", None, None, Refusal("no-match", "`x`", "why"), "fix")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.reason = "other"  # type: ignore[misc]
    assert dataclasses.replace(decision, fix="f2").fix == "f2" and decision.fix == "fix"
    assert Closest("p", 2, "e", "g").score == 0 and Closest("p", 2, "e", "g", "w", 3).why == "w"
    assert Refusal("a", "b", "c") == Refusal("a", "b", "c", None, None)


def test_it_refuses_what_it_cannot_speed_up() -> None:
    @dataclasses.dataclass
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class KeywordOnly:
        a: int

    for cls in (Mutable, Factory, Post, KeywordOnly):
        with pytest.raises(TypeError):
            fast_init(cls)
