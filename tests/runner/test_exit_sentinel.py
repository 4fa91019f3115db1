from __future__ import annotations

import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.exit_sentinel import ExitSentinel, SentinelFilter

SENT = ExitSentinel(left="__ecsx_aaaa", right="bbbb__")


def run_filter(chunks: list[bytes]) -> tuple[bytes, int | None]:
    f = SENT.filter()
    out = b"".join(f.feed(c) for c in chunks) + f.flush()
    return out, f.exit_code


def stream(body: bytes, code: int, nl: bytes = b"\r\n") -> bytes:
    return body + nl + SENT.marker + str(code).encode() + nl


@pytest.mark.parametrize("nl", [b"\r\n", b"\n"])
def test_sentinel_split_at_every_byte_position(nl: bytes) -> None:
    data = stream(b"hello\r\nworld", 42, nl)
    for cut in range(len(data) + 1):
        out, code = run_filter([data[:cut], data[cut:]])
        assert (out, code) == (b"hello\r\nworld", 42), cut


def test_sentinel_split_into_single_bytes_and_every_pair_of_cuts() -> None:
    data = stream(b"ab\r\n", 0)
    assert run_filter([bytes([b]) for b in data]) == (b"ab\r\n", 0)
    for i in range(len(data)):
        for j in range(i, len(data)):
            assert run_filter([data[:i], data[i:j], data[j:]]) == (b"ab\r\n", 0), (i, j)


def test_only_a_possible_prefix_is_held_back() -> None:
    f = SENT.filter()
    assert f.feed(b"line one\r\nline two") == b"line one\r\nline two"
    assert f.feed(b"\r\n__ecsx_a") == b""          # could still become the sentinel
    assert f.feed(b"X") == b"\r\n__ecsx_aX"         # it did not
    assert f.exit_code is None


def test_output_that_imitates_the_format_is_not_taken_for_the_sentinel() -> None:
    other = ExitSentinel(left="__ecsx_zzzz", right="yyyy__")
    forged = b"\r\n" + other.marker + b"0\r\n" + b"\r\n" + SENT.marker + b"%s\\n\" $?\r\n"
    out, code = run_filter([forged, b"\r\n" + SENT.marker + b"3\r\n"])
    assert code == 3
    assert out == forged


def test_no_sentinel_means_unknown_exit_status_and_all_output_kept() -> None:
    out, code = run_filter([b"partial\r\n__ecsx_aa"])
    assert code is None
    assert out == b"partial\r\n__ecsx_aa"


def test_output_after_the_sentinel_passes_through() -> None:
    out, code = run_filter([stream(b"x", 1) + b"late"])
    assert (out, code) == (b"xlate", 1)


@given(body=st.binary(max_size=200), code=st.integers(0, 255), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_property_any_chunking_gives_body_and_code(body: bytes, code: int, cuts: list[int]) -> None:
    data = stream(body, code)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert run_filter(chunks) == (body, code)


def test_each_run_gets_a_different_sentinel() -> None:
    assert ExitSentinel.random().marker != ExitSentinel.random().marker


@pytest.mark.parametrize(
    ("command", "expected_out", "expected_code"),
    [
        ("echo hi", b"hi\n", 0),
        ("echo 'it''s' && exit 3", b"its\n", 3),      # the subshell turns `exit` into a status
        ("printf 'no newline'; false", b"no newline", 1),
        ("echo a # trailing comment", b"a\n", 0),
        ("sleep 0 &", b"", 0),
    ],
)
def test_wrapped_command_through_a_real_shell(command: str, expected_out: bytes, expected_code: int | None) -> None:
    sentinel = ExitSentinel.random()
    argv = shlex.split(sentinel.wrap(command))  # what the agent does with the command string
    raw = subprocess.run(argv, capture_output=True, check=False, timeout=10).stdout
    f: SentinelFilter = sentinel.filter()
    out = f.feed(raw) + f.flush()
    assert (out, f.exit_code) == (expected_out, expected_code)


def test_a_command_printing_its_own_command_line_cannot_forge_the_sentinel() -> None:
    sentinel = ExitSentinel.random()
    argv = shlex.split(sentinel.wrap("cat /proc/$$/cmdline | tr '\\0' '\\n'; exit 7"))
    raw = subprocess.run(argv, capture_output=True, check=False, timeout=10).stdout
    assert raw.count(sentinel.marker) == 1   # only the real sentinel line has the joined marker
    f = sentinel.filter()
    out = f.feed(raw) + f.flush()
    assert f.exit_code == 7
    assert sentinel.left.encode() in out      # the printed command line is kept as output


@given(
    body=st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"_", b"__ecsx_", b"__ecsx_aaaa", b"bbbb__", b"7", b"x"]),
                  max_size=40).map(b"".join),
    code=st.integers(0, 255),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_property_near_miss_output_is_kept_byte_for_byte(body: bytes, code: int, cuts: list[int]) -> None:
    # Output made of sentinel fragments and newlines: the hardest input for the hold-back logic.
    data = stream(body, code)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    out, got = run_filter(chunks)
    if SENT.marker not in body:  # (only a body holding the secret marker itself could end it early)
        assert (out, got) == (body, code)
    else:
        assert got is not None


# -- with a deadline: the command ends by itself even if TerminateSession is lost ---------------------------

@pytest.mark.parametrize(
    ("command", "expected_out", "expected_code"),
    [
        ("echo hi", b"hi\n", 0),
        ("echo 'it''s' && exit 3", b"its\n", 3),
        ("printf 'no newline'; false", b"no newline", 1),
        ("echo a # trailing comment", b"a\n", 0),
        ("sleep 0 &", b"", 0),
        ("echo \"$1 $0\" | tr a-z A-Z", b" SH\n", 0),
    ],
)
@pytest.mark.parametrize("with_timeout", [True, False], ids=["timeout", "no-timeout-binary"])
def test_deadline_wrapper_keeps_output_and_status(tmp_path: Path, command: str, expected_out: bytes,
                                                  expected_code: int, with_timeout: bool) -> None:
    sentinel = ExitSentinel.random()
    argv = shlex.split(sentinel.wrap(command, deadline_s=30))
    raw = subprocess.run(argv, capture_output=True, check=False, timeout=20, env=_path_env(tmp_path, with_timeout)).stdout
    f = sentinel.filter()
    out = f.feed(raw) + f.flush()
    assert (out, f.exit_code) == (expected_out, expected_code)


@pytest.mark.skipif(not shutil.which("timeout"), reason="needs coreutils timeout")
def test_at_the_deadline_the_command_and_its_pipeline_are_killed() -> None:
    sentinel = ExitSentinel.random()
    marker = f"{secrets.token_hex(4)}"
    argv = shlex.split(sentinel.wrap(f"sleep 300 | cat # {marker}", deadline_s=1))
    raw = subprocess.run(argv, capture_output=True, check=False, timeout=60).stdout  # not 300 s
    f = sentinel.filter()
    f.feed(raw)
    f.flush()
    assert f.exit_code == 137  # 128 + SIGKILL, still reported through the sentinel
    assert not [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def _path_env(tmp_path: Path, with_timeout: bool) -> dict[str, str]:
    """A PATH with sh, tr, sleep and true, and `timeout` only when asked (a container without it)."""
    bin_dir = tmp_path / ("bin-t" if with_timeout else "bin")
    bin_dir.mkdir()
    for name in ("sh", "tr", "sleep", "true", *(["timeout"] if with_timeout else [])):
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    return {"PATH": str(bin_dir)}


@pytest.mark.parametrize("command", ["grep 'upstream timed out' a.log", 'echo "a  b" \'$HOME\' | wc -c',
                                     "ls -la -- '-x' && echo done"])
@pytest.mark.parametrize("with_timeout", [True, False], ids=["timeout", "no-timeout-binary"])
def test_the_deadline_wrapper_runs_the_same_words_as_the_plain_one(tmp_path: Path, command: str,
                                                                   with_timeout: bool) -> None:
    """The policy checked the words of ``command``; both wrappers must hand exactly those to the programs."""
    def words_run(wrapped: str, tag: str) -> list[str]:
        (tmp_path / tag).mkdir()
        env = _path_env(tmp_path / tag, with_timeout)
        log = tmp_path / f"{tag}.log"
        for name in ("grep", "echo", "wc", "ls"):
            fake = Path(env["PATH"]) / name
            fake.unlink(missing_ok=True)
            fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                            "open(os.environ['ARGV_LOG'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
            fake.chmod(0o755)
        subprocess.run(shlex.split(wrapped), env={**env, "ARGV_LOG": str(log)}, capture_output=True,
                       timeout=20, check=False, cwd=tmp_path)
        return sorted(log.read_text().splitlines())

    sentinel = ExitSentinel.random()
    assert words_run(sentinel.wrap(command, deadline_s=30), "deadline") == words_run(sentinel.wrap(command), "plain")
