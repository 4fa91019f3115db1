"""The YAML catalogue + policy file (``BotConfig``); process settings are ``bot.settings``.

``BotConfig`` is the reviewed, versioned YAML file: AWS environments, clusters, service aliases and the
policy. It is validated once at start-up; any problem names the file, the line and what is wrong,
because a bot that starts with a half-understood policy is worse than one that refuses to start.

No pydantic-settings here: `ecs-exec-bot policy` reads this file and must start fast.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError
from bot.rate_budget import DEFAULT_BURST, DEFAULT_PER_SECOND
from bot.runbooks import Runbook, runbook_problems

# ECS Exec sessions end after 20 minutes without I/O (not configurable); stay safely below it.
MAX_TIMEOUT_S = 1190
DEFAULT_TIMEOUT_S = 60

_ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


# ---------------------------------------------------------------------------------------------------------
# The YAML file


class _Strict(BaseModel):
    # Unknown keys are errors: a typo such as `timout:` must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvironmentConfig(_Strict):
    """One AWS account/region; ``role_arn`` is assumed with the requester as SourceIdentity."""

    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    role_arn: str | None = None
    # The bot's share of the account's ExecuteCommand throttle bucket (~40/s, shared with RunTask/StopTask):
    # see bot/rate_budget.py. Fan-out and every user of this environment draw from it.
    execute_command_per_second: float = Field(default=DEFAULT_PER_SECOND, gt=0, le=40)
    execute_command_burst: int = Field(default=DEFAULT_BURST, ge=1, le=100)

    @field_validator("account", mode="before")
    @classmethod
    def _account_as_text(cls, value: object) -> object:
        # YAML reads an unquoted 111122223333 as an int.
        return str(value) if isinstance(value, int) else value

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.match(value):
            raise ValueError("must be an IAM role ARN like arn:aws:iam::111122223333:role/name")
        return value

    @model_validator(mode="after")
    def _role_in_account(self) -> EnvironmentConfig:
        # The role to assume lives in the environment's account; a mismatch is a copy-paste accident.
        if self.account and self.role_arn and self.role_arn.split(":")[4] != self.account:
            raise ValueError(f"role_arn is in account {self.role_arn.split(':')[4]}, not {self.account}")
        return self


class ClusterConfig(_Strict):
    """A cluster alias: which environment it lives in and its ECS name (defaults to the alias)."""

    environment: str
    name: str | None = None


class ServiceConfig(_Strict):
    """A service alias users type in Slack (`web`) and where it really is."""

    environment: str | None = None  # may be omitted when `cluster` is declared under `clusters:`
    cluster: str
    service: str
    container: str | None = None
    shell: bool = True  # whether /bin/sh exists in the container (enables exit codes and pipes)
    timeout: int = Field(default=DEFAULT_TIMEOUT_S, ge=1, le=MAX_TIMEOUT_S)


class FanoutConfig(_Strict):
    """`--all-tasks` limits: never more than ``max_tasks`` targets, ``concurrency`` sessions at once."""

    max_tasks: int = Field(default=10, ge=1, le=200)
    concurrency: int = Field(default=4, ge=1, le=50)


class FollowupsConfig(_Strict):
    """Follow-up filters on kept output (bot/runs/followups.py). ``keep_hours: 0`` turns them off."""

    keep_hours: float = Field(default=24, ge=0, le=24 * 30)
    # One replica: files here (owner-only), bounded in total; default: "ecs-exec-bot-outputs" next to the
    # SQLite store (ECS_EXEC_BOT_SQLITE_PATH), the place the operator already made writable. Several
    # replicas: set s3_bucket.
    directory: Path | None = None
    max_total_mb: int = Field(default=1024, ge=1)
    s3_bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3_prefix: str = "ecs-exec-bot/outputs/"
    s3_region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")

    @property
    def enabled(self) -> bool:
        return self.keep_hours > 0


class RunLimits(_Strict):
    """The ``limits:`` section, enforced by ``bot.runs.limits.RunLimiter`` (here, not there, so reading the
    file does not import the run machinery)."""

    max_concurrent_per_user: int = Field(default=3, ge=1, le=100)
    max_runs_per_minute_per_user: int = Field(default=10, ge=1, le=1000)
    max_concurrent_per_task: int = Field(default=2, ge=1, le=100)


class BotConfig(_Strict):
    environments: dict[str, EnvironmentConfig] = Field(default_factory=dict)
    clusters: dict[str, ClusterConfig] = Field(default_factory=dict)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    fanout: FanoutConfig = Field(default_factory=FanoutConfig)
    limits: RunLimits = Field(default_factory=RunLimits)
    runbooks: dict[str, Runbook] = Field(default_factory=dict)  # named bundles of steps (bot/runbooks.py)
    followups: FollowupsConfig = Field(default_factory=FollowupsConfig)
    # A `bot.policy.PolicyConfig` (validated separately, see `_validate_policy`); None = deny everything.
    policy: Any = None
    source: str | None = Field(default=None, exclude=True)

    def environment_of(self, service: ServiceConfig) -> str:
        if service.environment:
            return service.environment
        return self.clusters[service.cluster].environment

    def cluster_name_of(self, service: ServiceConfig) -> str:
        declared = self.clusters.get(service.cluster)
        return (declared.name or service.cluster) if declared else service.cluster


def load_config(path: str | Path) -> BotConfig:
    """Read and validate the YAML file; raises ``ConfigError`` naming the file, the line and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"Cannot read config file {path}: {exc.strerror or exc}.",
            fix="Check the path given by --config or ECS_EXEC_BOT_CONFIG.",
        ) from None
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "<config>") -> BotConfig:
    data, lines = _load(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _error(source, 1, "the top level must be a mapping with environments/services/policy")
    raw_policy = data.pop("policy", None)
    try:
        config = BotConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise _from_validation(exc, source, lines, prefix=()) from None
    policy = _validate_policy(raw_policy, source, lines)
    config = config.model_copy(update={"policy": policy})
    _check_references(config, source, lines)
    return config


def _validate_policy(raw: object, source: str, lines: _LineIndex) -> object:
    if raw is None:
        return None
    # The policy model belongs to bot/policy.py; imported here only, so the seam stays one function.
    from bot.policy import PolicyConfig

    try:
        return PolicyConfig.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation(exc, source, lines, prefix=("policy",), rule_names=_rule_names(raw)) from None


def _rule_names(raw: object) -> list[object]:
    rules = raw.get("rules") if isinstance(raw, dict) else None
    return [r.get("name") if isinstance(r, dict) else None for r in rules] if isinstance(rules, list) else []


def _check_references(config: BotConfig, source: str, lines: _LineIndex) -> None:
    for name, cluster in config.clusters.items():
        if cluster.environment not in config.environments:
            raise _unknown(source, lines, ("clusters", name, "environment"), "environment",
                           cluster.environment, config.environments)
    for name, svc in config.services.items():
        if svc.environment is None:
            if svc.cluster not in config.clusters:
                raise _error(
                    source,
                    lines.line(("services", name)),
                    f"services.{name} needs `environment:` (or declare cluster {svc.cluster!r} under `clusters:`)",
                )
        elif svc.environment not in config.environments:
            raise _unknown(source, lines, ("services", name, "environment"), "environment",
                           svc.environment, config.environments)
    _check_policy_references(config, source, lines)
    first = next(runbook_problems(config), None)
    if first is not None:
        loc, problem = first
        raise _error(source, lines.line(loc), f"{'.'.join(map(str, loc))}: {problem}")


def _check_policy_references(config: BotConfig, source: str, lines: _LineIndex) -> None:
    """A rule naming a service or environment the catalogue lacks is a typo that would silently deny."""
    if config.policy is None:
        return
    for index, rule in enumerate(config.policy.rules):
        for field_name, known in (("environments", config.environments), ("services", config.services)):
            if not known:  # no catalogue of that kind: rules may name raw ECS services (exec --cluster)
                continue
            for position, value in enumerate(getattr(rule, field_name)):
                if value != "*" and value not in known:
                    raise _unknown(source, lines, ("policy", "rules", index, field_name, position),
                                   field_name[:-1], value, known)


def _unknown(source: str, lines: _LineIndex, loc: tuple[str | int, ...], what: str, value: str,
             known: Mapping[str, object]) -> ConfigError:
    choices = ", ".join(sorted(known)) or "none defined"
    dotted = ".".join(map(str, loc))
    return _error(source, lines.line(loc), f"{dotted}: unknown {what} {value!r} (known: {choices})")


def _error(source: str, line: int | None, problem: str) -> ConfigError:
    where = f"{source}, line {line}" if line else source
    return ConfigError(f"Invalid config {where}: {problem}.", fix="Fix the file and start again.")


def _from_validation(exc: ValidationError, source: str, lines: _LineIndex,
                     prefix: tuple[str | int, ...], rule_names: Sequence[object] = ()) -> ConfigError:
    err = exc.errors()[0]
    loc = prefix + tuple(err["loc"])
    if loc and loc[0] == "source":
        loc = ()
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling)"
    elif err["type"] == "missing":
        msg = "required key is missing"
    index = loc[2] if len(loc) > 4 and loc[:2] == ("policy", "rules") and loc[3] == "commands" else None
    if isinstance(index, int) and index < len(rule_names) and isinstance(rule_names[index], str):
        # Deeper than the rule itself (a command pattern): say which rule, as the rule's own errors do.
        msg = f"rule {rule_names[index]!r}: {msg}"
    return _error(source, lines.line(loc), f"{dotted}: {msg}")


def parse_yaml_with_lines(text: str, source: str) -> tuple[Any, _LineIndex]:
    """Any other YAML file the operator writes (e.g. policy test cases): its data, and where each key
    is, so errors can name the line. YAML syntax errors and duplicate keys are ``ConfigError``s."""
    return _load(text, source)


# libyaml's parser when PyYAML was built with it: the same nodes, marks and safe constructor, ~10x faster
# than the pure-Python one (12 ms -> 1.3 ms for the demo's config, paid by every CLI start-up).
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(text: str, source: str) -> tuple[Any, _LineIndex]:
    """What ``yaml.safe_load`` gives, and where each key is, from ONE parse of the text (the data is
    built from the node tree the line index reads)."""
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        lines = _LineIndex(root, source)
        if root is None:
            return None, lines
        if lines.has_merge_keys:
            # Building the data rewrites `<<:` mappings in place; keep the index's tree as written.
            return yaml.load(text, Loader=_SafeLoader), lines  # noqa: S506 - a safe loader
        # Constructing can fail too: a tag safe_load refuses (`!!python/object`, `!foo`).
        return loader.construct_document(root), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise _error(source, line, f"YAML syntax: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise _error(source, None, f"YAML syntax: {exc}") from None
    finally:
        loader.dispose()


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LineIndex:
    """Maps a pydantic error location (keys and list indexes) to a 1-based line of the YAML text.

    Built from PyYAML's node tree, whose marks keep positions that ``safe_load`` throws away. A location
    that does not exist in the file (a missing key) maps to the line of its deepest existing parent.
    Duplicate keys are reported here, since ``safe_load`` silently keeps the last one.
    """

    def __init__(self, root: yaml.Node | None, source: str) -> None:
        self._root = root
        self._source = source
        self.has_merge_keys = False
        if root is not None:
            self._check_duplicates(root)

    def line(self, loc: Sequence[str | int]) -> int | None:
        node = self._root
        if node is None:
            return None
        best = node.start_mark.line + 1
        for part in loc:
            child = self._child(node, part)
            if child is None:
                break
            key_node, node = child
            best = (key_node or node).start_mark.line + 1
        return best

    @staticmethod
    def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    return key, value
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            return None, node.value[part]
        return None

    def _check_duplicates(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    self.has_merge_keys = self.has_merge_keys or key.tag == _MERGE_TAG
                    if key.value in seen:
                        raise _error(self._source, key.start_mark.line + 1,
                                     f"duplicate key {key.value!r} (keep one entry per key)")
                    seen.add(key.value)
                self._check_duplicates(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self._check_duplicates(item)
