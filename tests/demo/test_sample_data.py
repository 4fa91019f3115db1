"""The committed sample files are exactly what `tests/demo/sample_data.py` generates, and tell its story."""

from __future__ import annotations

from pathlib import Path

from standins.demo.stand_ins import CONFIG_PATH, TASK_DIR
from tests.demo.sample_data import files, write


def test_committed_files_match_the_generator(tmp_path: Path) -> None:
    write(tmp_path)
    generated = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    committed = {p.relative_to(TASK_DIR): p.read_bytes() for p in TASK_DIR.rglob("*") if p.is_file()}
    assert generated.keys() == committed.keys()
    for name, content in generated.items():
        assert committed[name] == content, f"{name} differs: run `python -m tests.demo.sample_data`"


def test_the_access_log_is_a_few_thousand_lines_with_an_upstream_incident() -> None:
    lines = files()["var/log/nginx/access.log"].splitlines()
    assert 2000 <= len(lines) <= 5000
    failures = [line for line in lines if '" 502 ' in line or '" 504 ' in line]
    assert 10 <= len(failures) <= 100
    assert all("[26/Nov/2026:10:4" in line for line in failures)


def test_the_demo_config_is_a_valid_catalogue_and_policy() -> None:
    from bot.config import load_config
    from bot.policy import evaluate

    config = load_config(CONFIG_PATH)
    assert set(config.services) == {"web", "worker", "api"}

    def decide(user: str, service: str, command: str) -> tuple[bool, bool]:
        svc = config.services[service]
        d = evaluate(config.policy, user_id=user, user_groups=frozenset(), channel_id="C0INCIDENT",
                     service_alias=service, environment=config.environment_of(svc), command=command)
        return d.allowed, d.needs_approval

    # The tour's, the README's and the help's examples, at the container's paths.
    for command in ("tail -n 5 /var/log/nginx/access.log", "tail -n 100 /var/log/nginx/error.log",
                    "cat /var/log/nginx/access.log", "grep 502 /var/log/nginx/access.log | wc -l",
                    "grep ' 504 ' /var/log/nginx/access.log | cut -d' ' -f7 | sort | uniq -c",
                    "ls /etc/nginx", "ls -l /var/log", "cat /var/log/worker/jobs.log"):
        assert decide("U0ALICE", "web", command) == (True, False), command
    assert decide("U0BOB", "api", "cat /etc/app/config.env") == (True, False)
    assert decide("U0ALICE", "web", "cat /etc/nginx/nginx.conf") == (False, True)
    # The demo runs commands on this machine. The stand-in maps the container's paths into the sandbox, but
    # it is a view, not a jail: the policy keeps commands to reading the task's logs and config, and refuses
    # what would build another path at run time or write anything.
    for command in ("cat /etc/passwd", "tail -n 5 /etc/shadow", "cat /var/log/../../../etc/passwd",
                    "cat /var/log/nginx/../../../etc/passwd", "cat var/log/nginx/access.log", "ls /etc",
                    "sort /etc/passwd", "ls -l /", "ls /root", "cat /var/log/nginx/.htpasswd", "grep x /etc/passwd",
                    "cat x; rm -rf /", "p=/var; cat $p/log/nginx/access.log", "d=var; cat /$d/log/nginx/access.log",
                    "cat $(echo /etc/passwd)", "cat /var/log/nginx/access.log > /var/log/x", "tee /var/log/x",
                    "cp /var/log/nginx/access.log /var/log/x", "sh -c 'cat /var/log/nginx/access.log'", "wc -l"):
        assert decide("U0ALICE", "api", command) == (False, False), command
    # Strangers are refused.
    assert decide("U0MALLORY", "web", "tail -n 5 /var/log/nginx/access.log") == (False, False)
