"""boto3 clients per environment, role assumption with the requester's identity, and AWS error mapping.

Only this module, `bot/targets.py` and `bot/runner.py` talk to AWS. Clients are built from a
``boto3.Session`` so the standard credential chain, `AWS_REGION` and the per-service endpoint variables
(`AWS_ENDPOINT_URL_ECS`, `AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL_KMS`, ...) work unchanged; the tests and
the demo rely on exactly that to point the bot at local stand-ins.

Every boto3 call is blocking, so callers go through ``aws_call`` (``asyncio.to_thread`` + a bounded retry
on throttling on top of botocore's adaptive retry mode).
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)

from bot.config import BotConfig, EnvironmentConfig
from bot.errors import AwsCredentialsError, AwsError, BotError, ConfigError
from bot.rate_budget import RateBudget

T = TypeVar("T")

# botocore's adaptive mode adds client-side rate limiting to the standard retry mode; our own retry
# (``aws_call``) only kicks in when botocore has already given up on a throttled call.
#
# The budget multiplies: botocore's ``max_attempts`` counts *retries* (``max_attempts: 5`` is 6 calls;
# ``total_max_attempts`` counts calls), under ``aws_call``'s attempts. It used to be 6 × 4 = 24 calls and,
# with botocore's throttling backoff (random × 1, 2, 4, 8, 16 s) and ours, up to ~2 minutes before the
# user heard anything. Now: 2 calls per botocore call (one retry, backoff ≤ 1 s) × 3 ``aws_call`` attempts
# (sleeps ≤ 0.5 s and ≤ 1 s) = 6 calls and at most ~4.5 s of backoff for a throttled call — then one
# sentence ("AWS kept throttling …") instead of a long silent wait.
RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "total_max_attempts": 2},
    connect_timeout=5,
    read_timeout=60,
    user_agent_extra="ecs-exec-bot",
)

THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "ThrottledException", "SlowDown",
})
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation",
                                 "UnauthorizedException"})
CREDENTIAL_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException",
                              "InvalidClientTokenId", "InvalidSignatureException", "RequestExpired"})
_NOT_AUTHORIZED = re.compile(r"not authorized to perform:? (?P<action>[\w:*-]+)(?: on resource:? (?P<arn>\S+))?")
# Allowed characters of sts:AssumeRole SourceIdentity and RoleSessionName.
_IAM_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    return str(exc)


def describe_setup_error(exc: BaseException, *, action: str = "AWS calls") -> BotError | None:
    """The sentence for a failure of the operator's AWS set-up (region, profile, credentials), or None.

    The one table of these: the CLI's last-resort handler, the stores and ``describe_aws_error`` all come
    here, so "no region" reads the same whichever call happened to need it first.
    """
    if isinstance(exc, NoRegionError):
        return ConfigError("No AWS region is configured.",
                           fix="Set AWS_REGION (or `region:` for the environment in the config file).")
    if isinstance(exc, ProfileNotFound):
        profile = getattr(exc, "kwargs", {}).get("profile", "?")
        return ConfigError(f"The AWS profile {profile!r} does not exist.",
                           fix="Check AWS_PROFILE against `aws configure list-profiles`, or unset it.")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AwsCredentialsError(
            "No AWS credentials were found.",
            fix="Configure the standard AWS credential chain (AWS_PROFILE, environment variables or a role).",
        )
    if isinstance(exc, TokenRetrievalError | SSOError | CredentialRetrievalError):
        return AwsCredentialsError(f"The AWS credentials could not be loaded ({exc}).",
                                   fix="Log in again (`aws sso login`) or refresh the credentials.")
    code = error_code(exc)
    if code in CREDENTIAL_CODES:
        return AwsCredentialsError(
            f"AWS rejected the bot's credentials for {action} ({code}).",
            fix="Refresh the credentials (or the SSO login) the bot runs with.",
        )
    return None


def describe_aws_error(exc: BaseException, *, action: str, resource: str) -> BotError:
    """The generic one-sentence form of an AWS failure (call sites map their own special codes first)."""
    code = error_code(exc)
    if code in ACCESS_DENIED_CODES or "not authorized" in error_message(exc):
        found = _NOT_AUTHORIZED.search(error_message(exc))
        denied_action = found["action"] if found else action
        denied_arn = (found["arn"] if found and found["arn"] else resource).rstrip(".")
        return AwsError(
            f"AWS denied {denied_action} on {denied_arn}.",
            fix=f"Allow {denied_action} on that resource for the bot's role (IAM policy or SCP), then retry.",
        )
    if code in THROTTLING_CODES:
        return AwsError(
            f"AWS kept throttling {action} after several retries.",
            fix="Wait a minute and retry; if it persists, lower fan-out concurrency or ask for a quota increase.",
        )
    setup = describe_setup_error(exc, action=action)
    if setup is not None:
        return setup
    if isinstance(exc, EndpointConnectionError):
        return AwsError(
            f"Cannot reach the AWS endpoint for {action}: {exc}.",
            fix="Check the region, network access and any AWS_ENDPOINT_URL_* variables.",
        )
    detail = error_message(exc).rstrip(".")
    return AwsError(f"{action} on {resource} failed: {code + ': ' if code else ''}{detail}.",
                    fix="Check the resource and the bot's IAM permissions, then retry.")


async def aws_call(
    fn: Callable[..., T],
    /,
    *args: Any,
    attempts: int = 3,
    base_delay: float = 0.5,
    max_delay: float = 2.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    **kwargs: Any,
) -> T:
    """Run a blocking boto3 call in a thread; retry throttling with full-jitter backoff, bounded."""
    for attempt in range(1, attempts + 1):
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ClientError as exc:
            if error_code(exc) not in THROTTLING_CODES or attempt == attempts:
                raise
        await sleep(random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1))))
    raise AssertionError("unreachable")  # pragma: no cover


def iam_safe_name(value: str, *, prefix: str = "") -> str:
    """A SourceIdentity / RoleSessionName: allowed charset only, 2..64 characters."""
    cleaned = _IAM_NAME_UNSAFE.sub("_", f"{prefix}{value}")[:64]
    return cleaned if len(cleaned) >= 2 else (cleaned + "__")[:2]


class AwsClients:
    """The clients of one environment (optionally with an assumed role); thread-safe lazy creation."""

    def __init__(self, session: boto3.Session, *, environment: str = "default",
                 config: Config = RETRY_CONFIG, execute_budget: RateBudget | None = None) -> None:
        self.session = session
        self.environment = environment
        # The environment's ExecuteCommand budget, shared by every requester's clients (bot/rate_budget.py).
        self.execute_budget = execute_budget or RateBudget()
        self._config = config
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                try:
                    self._clients[service] = self.session.client(service, config=self._config)
                except BotoCoreError as exc:  # no region, unknown profile: the set-up, not the call
                    raise describe_setup_error(exc) or describe_aws_error(
                        exc, action=f"{service} client", resource=self.environment) from None
            return self._clients[service]

    @property
    def ecs(self) -> Any:
        return self.client("ecs")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    @property
    def kms(self) -> Any:
        return self.client("kms")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    @property
    def ec2(self) -> Any:
        return self.client("ec2")


@dataclass
class _Cached:
    clients: AwsClients
    expires_at: float


class AwsClientFactory:
    """``AwsClients`` per (environment, requester).

    Without a role, one client set per environment. With ``role_arn``, the role is assumed with
    ``SourceIdentity=<requester>`` (CloudTrail then names the Slack user on every call made with that
    session) and cached until five minutes before the credentials expire.
    """

    def __init__(
        self,
        environments: Mapping[str, EnvironmentConfig] | None = None,
        *,
        default_region: str | None = None,
        session_factory: Callable[..., boto3.Session] = boto3.Session,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._environments = dict(environments or {})
        self._default_region = default_region
        self._session_factory = session_factory
        self._clock = clock
        self._cache: dict[tuple[str, str | None], _Cached] = {}
        self._budgets: dict[str, RateBudget] = {}
        self._lock = threading.Lock()

    def budget(self, environment: str) -> RateBudget:
        """The environment's one ExecuteCommand budget (whatever the requester or role session)."""
        env = self._environments.get(environment, EnvironmentConfig())
        with self._lock:
            if environment not in self._budgets:
                self._budgets[environment] = RateBudget(env.execute_command_per_second, env.execute_command_burst)
            return self._budgets[environment]

    def for_environment(self, environment: str, requester: str | None = None) -> AwsClients:
        """Blocking (may call sts:AssumeRole): call it through ``asyncio.to_thread``."""
        env = self._environments.get(environment, EnvironmentConfig())
        key = (environment, requester if env.role_arn else None)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached.expires_at > self._clock():
                return cached.clients
        base = self._base_session(environment, env)
        if not env.role_arn:
            clients = AwsClients(base, environment=environment, execute_budget=self.budget(environment))
            expires = float("inf")
        else:
            clients, expires = self._assume(base, env.role_arn, environment, requester or "unknown")
        with self._lock:
            self._cache[key] = _Cached(clients, expires)
        return clients

    def _base_session(self, environment: str, env: EnvironmentConfig) -> boto3.Session:
        """The standard credential chain's session, refused early when it has no region (every client
        would fail later with botocore's bare NoRegionError)."""
        region = env.region or self._default_region
        try:
            base = self._session_factory(region_name=region) if region else self._session_factory()
            resolved = base.region_name
        except BotoCoreError as exc:  # an unknown AWS_PROFILE surfaces here
            raise describe_setup_error(exc) or describe_aws_error(
                exc, action="boto3.Session", resource=environment) from None
        if not resolved:
            where = f"`region:` under environments.{environment} in the config file, or " \
                if environment in self._environments else ""
            raise ConfigError(f"No AWS region is configured for environment {environment}.",
                              fix=f"Set {where}AWS_REGION.")
        return base

    def _assume(self, base: boto3.Session, role_arn: str, environment: str,
                requester: str) -> tuple[AwsClients, float]:
        try:
            sts = base.client("sts", config=RETRY_CONFIG)
            creds = sts.assume_role(
                RoleArn=role_arn,
                RoleSessionName=iam_safe_name(requester, prefix="ecs-exec-bot-"),
                SourceIdentity=iam_safe_name(requester),
                DurationSeconds=3600,
            )["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in ACCESS_DENIED_CODES:
                raise AwsError(
                    f"The bot cannot assume {role_arn} for environment {environment}.",
                    fix="Allow sts:AssumeRole and sts:SetSourceIdentity for the bot in that role's trust policy.",
                ) from None
            raise describe_aws_error(exc, action="sts:AssumeRole", resource=role_arn) from None
        session = self._session_factory(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=base.region_name,
        )
        expiration = creds["Expiration"]
        expires_at = expiration.timestamp() if hasattr(expiration, "timestamp") else self._clock() + 3600
        return AwsClients(session, environment=environment, execute_budget=self.budget(environment)), expires_at - 300


def check_environments(config: BotConfig, factory: AwsClientFactory, *, requester: str = "startup-check") -> None:
    """`serve`'s start-up check: every environment has a region and, when it has a role, the role can be
    assumed. A bot that starts anyway would fail every later command with the same error, one user at a
    time; refusing to start (ConfigError, 78) puts the one sentence in the deploy's log instead.

    Blocking (AssumeRole is a network call): run it in a thread, after the local checks.
    """
    # Environments without a role first: their check is local, so it fails before any network call.
    names = sorted(config.environments, key=lambda n: (config.environments[n].role_arn is not None, n))
    for name in names or ["default"]:
        try:
            factory.for_environment(name, requester)
        except BotError as exc:
            message = exc.message if f"environment {name}" in exc.message else f"Environment {name}: {exc.message}"
            raise ConfigError(message, fix=exc.fix) from None
