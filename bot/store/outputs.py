"""Kept outputs: each run's redacted output, kept for follow-up filters for a set time (default 24 h).

What is kept is exactly the run's "full output" file (`bot.output.views.full_output_text`): cleaned,
bounded and redacted before it is written, so nothing here is more sensitive than what the thread shows.
One text per target (a fan-out keeps one per task), and a small JSON description of the run (who, where,
which thread) that the filter's authorization and its answer need.

Two places, one protocol:

- `DirectoryOutputs` (default): files under a directory on the replica's disk, owner-only permissions,
  pruned by age and by total size. Good for one replica; with several, a click can reach a replica that
  does not have the file, which is why:
- `bot.store.outputs_s3.S3Outputs`: objects under a prefix of an S3 bucket, shared by every replica.

The API is synchronous, like `bot.store.base.Store`; async callers use ``asyncio.to_thread``. Every
failure of the backing storage is raised as ``bot.errors.StoreError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import StoreError

if TYPE_CHECKING:
    from bot.config import FollowupsConfig

# Request ids are ours (hex), but a button value carrying one is input: nothing else may name a path.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_READ_CHUNK = 64 * 1024
_PIECE = 1024 * 1024  # text handed to the filter at a time


@dataclass(frozen=True)
class KeptPart:
    """One target's output: which task and container printed it."""

    task_id: str
    container: str


@dataclass(frozen=True)
class KeptRun:
    """A run whose output is kept; ``thread_ts`` is the thread its follow-ups are answered in."""

    request_id: str
    requester: str
    channel: str
    thread_ts: str
    service: str
    environment: str
    command: str
    kept_at: float
    expires_at: float
    parts: tuple[KeptPart, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> KeptRun:
        data: dict[str, Any] = json.loads(text)
        parts = tuple(KeptPart(**p) for p in data.pop("parts", ()))
        return cls(parts=parts, **data)


def valid_request_id(request_id: str) -> bool:
    return bool(_REQUEST_ID.match(request_id))


def thread_key(channel: str, thread_ts: str) -> str:
    """A file/object name for a thread (Slack ids and timestamps are safe, but hashing keeps it so)."""
    return hashlib.sha256(f"{channel}:{thread_ts}".encode()).hexdigest()[:32]


def text_chunks(chunks: Iterator[bytes], piece_bytes: int = _PIECE) -> Iterator[str]:
    """A UTF-8 byte stream as text in pieces of whole lines, about ``piece_bytes`` each, without the
    newline that ends a piece (``"a\nb"`` is two lines): bounded memory, and few calls for the matcher."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) >= piece_bytes:
            cut = buf.rfind(b"\n")
            if cut >= 0:
                yield buf[:cut].decode("utf-8", errors="replace")
                del buf[: cut + 1]
    if buf:
        # The last newline ends the last line; it does not start an empty one.
        yield buf[:-1].decode("utf-8", errors="replace") if buf.endswith(b"\n") else buf.decode(
            "utf-8", errors="replace")


class KeptOutputs(Protocol):
    def put(self, run: KeptRun, texts: Sequence[str]) -> None:
        """Keep ``texts`` (one per part, already redacted) and make ``run`` the thread's latest."""
        ...

    def get(self, request_id: str) -> KeptRun | None:
        """The run, or None when it was never kept, has expired or was pruned."""
        ...

    def chunks(self, request_id: str, part: int) -> Iterator[str]:
        """The part's text, streamed in pieces of whole lines (`text_chunks`). ``StoreError`` if it is gone."""
        ...

    def latest_in_thread(self, channel: str, thread_ts: str) -> str | None:
        """The request id of the last run kept for that thread, or None."""
        ...

    def prune(self) -> int:
        """Delete what has expired (and, where bounded, the oldest beyond the size bound); how many runs."""
        ...


class DirectoryOutputs:
    """Kept outputs under ``root``: ``runs/<request id>/{run.json,0.txt,…}`` and ``threads/<key>``."""

    def __init__(self, root: str | Path, *, max_total_bytes: int = 1024 * 1024 * 1024,
                 clock: Callable[[], float] = time.time) -> None:
        self._root = Path(root)
        self._runs = self._root / "runs"
        self._threads = self._root / "threads"
        self._max_total = max_total_bytes
        self._clock = clock
        self._bound_due = 0.0
        try:
            for path in (self._root, self._runs, self._threads):
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the kept-output directory {self._root} ({exc.strerror or exc}).",
                fix="Point followups.directory in the config file at a writable directory.",
            ) from None

    def _run_dir(self, request_id: str) -> Path:
        if not valid_request_id(request_id):
            raise StoreError("That is not a request id the bot gave.", fix="Use the id shown under the result.")
        return self._runs / request_id

    def put(self, run: KeptRun, texts: Sequence[str]) -> None:
        final = self._run_dir(run.request_id)
        try:
            staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self._runs))
            for n, text in enumerate(texts):
                (staging / f"{n}.txt").write_text(text, encoding="utf-8")
            (staging / "run.json").write_text(run.to_json(), encoding="utf-8")
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)  # readers see all of it or none of it
            _write_atomically(self._threads / thread_key(run.channel, run.thread_ts), run.request_id)
        except OSError as exc:
            raise StoreError(f"Cannot keep the output of request {run.request_id} ({exc.strerror or exc}).",
                             fix="Check free space and permissions of followups.directory.") from None
        if self._clock() >= self._bound_due:  # a scan of the directory, so at most once a minute
            self._bound_due = self._clock() + 60
            self._bound_total()

    def get(self, request_id: str) -> KeptRun | None:
        try:
            run = KeptRun.from_json((self._run_dir(request_id) / "run.json").read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise StoreError(f"Cannot read the kept output of request {request_id} ({exc}).") from None
        return run if run.expires_at > self._clock() else None

    def chunks(self, request_id: str, part: int) -> Iterator[str]:
        try:
            handle = (self._run_dir(request_id) / f"{int(part)}.txt").open("rb")
        except OSError as exc:
            raise StoreError(f"The kept output of request {request_id} is gone ({exc.strerror or exc}).") from None
        with handle:
            yield from text_chunks(iter(lambda: handle.read(_READ_CHUNK), b""))

    def latest_in_thread(self, channel: str, thread_ts: str) -> str | None:
        try:
            request_id = (self._threads / thread_key(channel, thread_ts)).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"Cannot read the kept-output index ({exc.strerror or exc}).") from None
        return request_id if valid_request_id(request_id) else None

    def prune(self) -> int:
        now = self._clock()
        pruned = 0
        for run_dir, run in self._scan():
            if run is None or run.expires_at <= now:
                shutil.rmtree(run_dir, ignore_errors=True)
                pruned += 1
        for index in self._threads.iterdir():
            with contextlib.suppress(OSError):
                if not (self._runs / index.read_text(encoding="utf-8").strip()).exists():
                    index.unlink()
        return pruned + self._bound_total()

    def _scan(self) -> Iterator[tuple[Path, KeptRun | None]]:
        try:
            entries = list(self._runs.iterdir())
        except OSError as exc:
            raise StoreError(f"Cannot list the kept outputs ({exc.strerror or exc}).") from None
        for run_dir in entries:
            if run_dir.name.startswith(".incoming-"):
                # A put that died half-way (the process was killed): older than a minute is litter.
                if _age_s(run_dir, self._clock()) > 60:
                    shutil.rmtree(run_dir, ignore_errors=True)
                continue
            try:
                yield run_dir, KeptRun.from_json((run_dir / "run.json").read_bytes())
            except (OSError, ValueError, TypeError):
                yield run_dir, None

    def _bound_total(self) -> int:
        """Oldest runs go first once the directory holds more than ``max_total_bytes``."""
        sized = []
        for run_dir, run in self._scan():
            size = sum(f.stat().st_size for f in run_dir.iterdir() if f.is_file())
            sized.append((run.kept_at if run else 0.0, size, run_dir))
        total = sum(size for _, size, _ in sized)
        dropped = 0
        for _, size, run_dir in sorted(sized, key=lambda item: item[0]):
            if total <= self._max_total:
                break
            shutil.rmtree(run_dir, ignore_errors=True)
            total -= size
            dropped += 1
        return dropped


DEFAULT_DIRECTORY = "ecs-exec-bot-outputs"


def open_outputs(config: FollowupsConfig, *, store_dir: Path, region: str | None = None,
                 session_factory: Callable[..., Any] | None = None) -> KeptOutputs | None:
    """The kept-output place the config names: S3 when ``s3_bucket`` is set, else the directory (by
    default `DEFAULT_DIRECTORY` in ``store_dir``, the SQLite store's directory); None when follow-ups are off."""
    if not config.enabled:
        return None
    if config.s3_bucket:
        import boto3

        from bot.store.outputs_s3 import S3Outputs

        session = (session_factory or boto3.session.Session)()
        client = session.client("s3", region_name=config.s3_region or region)
        return S3Outputs(client, config.s3_bucket, config.s3_prefix)
    directory = config.directory if config.directory is not None else store_dir / DEFAULT_DIRECTORY
    return DirectoryOutputs(directory, max_total_bytes=config.max_total_mb * 1024 * 1024)


def _age_s(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except OSError:
        return 0.0


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
