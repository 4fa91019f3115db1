"""The stand-in's container paths (standins/agent_paths.py): which words are rewritten, where to, and back."""

from __future__ import annotations

import shlex

import pytest

from bot.exit_sentinel import ExitSentinel
from standins.agent_paths import ContainerPaths, OutputUnmapper, PathMapError, container_normpath

ROOT = "/tmp/ecs-exec-agent-x1/task"
PATHS = ContainerPaths(ROOT)


@pytest.mark.parametrize(("word", "expected"), [
    ("/var/log/nginx/access.log", f"{ROOT}/var/log/nginx/access.log"),
    ("/etc/nginx", f"{ROOT}/etc/nginx"),
    ("/var/log/", f"{ROOT}/var/log/"),
    ("/var", f"{ROOT}/var"),
    ("/srv/app/config.yml", f"{ROOT}/srv/app/config.yml"),
    ("/app/bin/healthcheck", f"{ROOT}/app/bin/healthcheck"),
    ("/var/log/nginx/*.log", f"{ROOT}/var/log/nginx/*.log"),  # a shell, if any, globs in the task's dir
    ("/var/log/a b.log", f"{ROOT}/var/log/a b.log"),  # one word (quoted when typed): only its start moves
    ("--file=/var/log/x", f"--file={ROOT}/var/log/x"),
    ("PATH=/bin:/var/x", f"PATH=/bin:{ROOT}/var/x"),
    # The host's own, and what only looks like a container path.
    ("/usr/bin/env", "/usr/bin/env"), ("/dev/null", "/dev/null"), ("/proc/self/status", "/proc/self/status"),
    ("/tmp/x", "/tmp/x"), ("/", "/"), ("/variable", "/variable"), ("/var2/x", "/var2/x"),
    ("var/log/x", "var/log/x"), ("a/var/log", "a/var/log"), ("http://h/var/x", "http://h/var/x"),
    ("-d/", "-d/"), ("s/a/b/", "s/a/b/"), ("", ""),
    # A URL's `//host/path` is not a path, even when the host is named like a container directory.
    ("postgres://app:pw@db:5432/app", "postgres://app:pw@db:5432/app"), ("http://var/x", "http://var/x"),
])
def test_a_word_is_mapped_when_it_names_a_container_directory(word: str, expected: str) -> None:
    assert PATHS.map_word(word) == expected


@pytest.mark.parametrize(("script", "expected"), [
    ("cat /var/log/nginx/access.log", f"cat {ROOT}/var/log/nginx/access.log"),
    ("grep 502 /var/log/nginx/access.log | wc -l", f"grep 502 {ROOT}/var/log/nginx/access.log | wc -l"),
    ("cat '/var/log/a b.log'", f"cat '{ROOT}/var/log/a b.log'"),
    ('cat "/etc/nginx/nginx.conf"', f'cat "{ROOT}/etc/nginx/nginx.conf"'),
    ("ls /etc/nginx;ls /srv", f"ls {ROOT}/etc/nginx;ls {ROOT}/srv"),
    ("cat $(ls /etc/nginx/*.conf)>/dev/null", f"cat $(ls {ROOT}/etc/nginx/*.conf)>/dev/null"),
    ("tail -n 1 /var/log/x&&echo `cat /etc/y`", f"tail -n 1 {ROOT}/var/log/x&&echo `cat {ROOT}/etc/y`"),
    ("cut -d/ -f2 /var/x", f"cut -d/ -f2 {ROOT}/var/x"),
    ("p=/var; cat $p/log", f"p={ROOT}/var; cat $p/log"),  # the literal is seen where it is assigned
    # Put together by the shell at run time: never seen, so not mapped (the documented cost).
    ("d=var; cat /$d/log", "d=var; cat /$d/log"),
    ("cat $(printf /%s var)/log", "cat $(printf /%s var)/log"),
    ("cd /; cat var/log/x", "cd /; cat var/log/x"),
    ("cat ${HOME}/var/x", "cat ${HOME}/var/x"),
])
def test_paths_inside_a_shell_script_are_mapped_too(script: str, expected: str) -> None:
    assert PATHS.map_argv(["sh", "-c", script]) == ["sh", "-c", expected]


def test_the_bots_own_wrapper_keeps_working_and_its_command_is_mapped() -> None:
    command = "grep 502 /var/log/nginx/access.log | wc -l"
    for deadline in (None, 30):
        argv = shlex.split(ExitSentinel.random().wrap(command, deadline_s=deadline))
        mapped = PATHS.map_argv(argv)
        # Only the user's command changes; the wrapper's `2>/dev/null` and sentinel stay the host's.
        changed = [(a, b) for a, b in zip(argv, mapped, strict=True) if a != b]
        assert len(changed) == 1
        assert f"{ROOT}/var/log/nginx/access.log | wc -l" in changed[0][1]


@pytest.mark.parametrize(("word", "expected"), [
    ("/var/../../etc/passwd", f"{ROOT}/etc/passwd"),
    ("/var/log/nginx/../../../../../../etc/shadow", f"{ROOT}/etc/shadow"),
    ("/var/../home/me/.ssh/id_rsa", f"{ROOT}/home/me/.ssh/id_rsa"),  # chroot: the task's /home, not ours
    ("/var/log/..", f"{ROOT}/var"),
    ("/var/..", f"{ROOT}/"),
    ("//etc/passwd", f"{ROOT}//etc/passwd"),  # kept as typed (no `..`): the same file to the kernel
    ("/./etc/passwd", f"{ROOT}/./etc/passwd"),
    ("/usr/../etc/passwd", f"{ROOT}/etc/passwd"),
    ("/../../etc/passwd", f"{ROOT}/etc/passwd"),
    (f"{ROOT}/../../../etc/passwd", f"{ROOT}/etc/passwd"),
])
def test_dot_dot_never_leaves_the_task_directory(word: str, expected: str) -> None:
    assert PATHS.map_word(word) == expected


@pytest.mark.parametrize("word", [
    "cat /var/log/\\.\\./\\.\\./\\.\\./etc/passwd",  # sh reads `\.\.` as `..`
    "cat /var/log/.''./.''./.''./etc/passwd",
    'cat /var/log/".."/".."/etc/passwd',
    "cat '/var/log/a b/../../../../../etc/passwd'",  # the space ends the path the mapping sees
    "cat /var/log/x ../../../../etc/passwd",
    "cd ..; cat /var/log/x",  # conservative: any `..` in a word that has a container path
])
def test_dot_dot_the_mapping_cannot_resolve_is_refused(word: str) -> None:
    with pytest.raises(PathMapError, match=r"`\.\.`"):
        PATHS.map_word(word)


def test_dot_dot_without_a_container_path_is_left_alone() -> None:
    assert PATHS.map_argv(["cat", "../notes.txt"]) == ["cat", "../notes.txt"]
    assert PATHS.map_word("grep -c a..b /var/x") == f"grep -c a..b {ROOT}/var/x"


def test_a_root_under_a_container_directory_is_left_as_the_task_s_own() -> None:
    # macOS: the temp dir, so the sandbox, is under /var/folders.
    paths = ContainerPaths("/var/folders/ab/T/ecs-exec-demo-1/task")
    assert paths.map_word("/var/folders/ab/T/ecs-exec-demo-1/task/notes.txt") == (
        "/var/folders/ab/T/ecs-exec-demo-1/task/notes.txt")
    assert paths.map_word("/var/log/x") == "/var/folders/ab/T/ecs-exec-demo-1/task/var/log/x"
    # Out of the root, it is /var/folders/ab/T/etc/passwd: a container path, mapped into the root.
    assert paths.map_word("/var/folders/ab/T/ecs-exec-demo-1/task/../../etc/passwd") == (
        "/var/folders/ab/T/ecs-exec-demo-1/task/var/folders/ab/T/etc/passwd")


def test_a_root_a_shell_would_misread_refuses_only_words_that_need_it() -> None:
    paths = ContainerPaths("/tmp/my dir/task")
    assert paths.map_argv(["printf", "hello"]) == ["printf", "hello"]
    with pytest.raises(PathMapError, match="characters a shell would interpret"):
        paths.map_word("/var/log/x")


def test_container_normpath() -> None:
    assert container_normpath("/a/./b//c/../d/") == "/a/b/d"
    assert container_normpath("/../..") == "/"
    assert container_normpath("") == "/"


OUTPUT = (
    f"cat: {ROOT}/var/log/nginx/nope: No such file or directory\r\n"
    f"{ROOT}\r\n"
    f"{ROOT}-old /private{ROOT}/etc/nginx x{ROOT}/var\r\n"
    f"{ROOT}"
).encode()
SHOWN = b"cat: /var/log/nginx/nope: No such file or directory\r\n/\r\n" + (
    f"{ROOT}-old /etc/nginx x/var\r\n/").encode()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 29, len(OUTPUT)])
def test_output_shows_container_paths_however_it_is_chunked(size: int) -> None:
    unmapper = OutputUnmapper([ROOT, f"/private{ROOT}"])
    chunks = [unmapper.feed(OUTPUT[i:i + size]) for i in range(0, len(OUTPUT), size)]
    assert b"".join(chunks) + unmapper.flush() == SHOWN
    assert unmapper.flush() == b""


@pytest.mark.parametrize("word", ["/var/log/x", "//etc//nginx/", "/./srv/.", "--file=/app", "echo /var:/etc"])
def test_output_shows_a_mapped_word_exactly_as_typed(word: str) -> None:
    unmapper = PATHS.unmapper()
    assert (unmapper.feed(PATHS.map_word(word).encode()) + unmapper.flush()).decode() == word


def test_output_without_the_root_passes_through_at_once() -> None:
    unmapper = ContainerPaths(ROOT).unmapper()
    assert unmapper.feed(b"10.0.2.81 - - GET /api/cart 502\r\n") == b"10.0.2.81 - - GET /api/cart 502\r\n"
    assert unmapper.feed(b"ends with /tm") == b"ends with "  # could be the root: held for the next chunk
    assert unmapper.feed(b"p/other\r\n") == b"/tmp/other\r\n"
