"""Data-channel client CPU per MiB of output, with frames arriving as the real agent sends them.

    python -m benchmarks.data_channel                      # paced (the agent's real pacing), 8 MiB
    python -m benchmarks.data_channel --pattern batched    # back to back, 50 MiB
    python -m benchmarks.data_channel --tls                # the same over wss:// (production is TLS)

The local agent (``python -m standins.agent``) runs in a child process, so the figures are the
client's alone. Arrival patterns:

- ``paced``: one 1 KiB message every ~1 ms, as the agent reads a busy PTY (it sleeps 1 ms between 1 KiB
  reads, docs/ssm-protocol.md §9): the client wakes up for every message. This is production.
- ``batched``: as fast as the client acks (at most 256 unacked): many frames per socket read. Flattering:
  the per-read costs are shared by dozens of messages; it shows the per-message floor.

``--tls`` serves ``wss://`` with a throwaway self-signed certificate made at run time (``cryptography``)
and trusted by this process only (``SSL_CERT_FILE``), so asyncio's TLS layer is measured too.

Figures (MiB = 2**20 bytes): ``client_cpu_ms_per_mib`` is this process's CPU from the first output byte to
the end of the session divided by the MiB received; ``frames_per_read`` is output messages per socket
read in that time; ``startup_cpu_ms`` / ``startup_rss_mib`` are the process's CPU (interpreter, imports,
boto3 client, dial, token) and resident memory when the first output byte arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

MIB = 1 << 20
PACED_INTERVAL = 0.001  # seconds between 1 KiB messages: the agent's sleep between PTY reads
ROOT = Path(__file__).resolve().parents[1]  # the agent always comes from this tree (see --help: client root)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def write_throwaway_certificate(directory: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, valid for one day; run in a child (keeps this process's
    start-up figures free of key generation)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(key_path).write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def start_agent(tls: tuple[str, str] | None) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "standins.agent", "--port", "0"]
    if tls:
        args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith(("http://", "https://")):
        proc.kill()
        raise SystemExit(f"the local agent did not start (printed {url!r})")
    return proc, url


def register(url: str, total_bytes: int, interval: float, context: ssl.SSLContext | None) -> dict[str, Any]:
    spec = {"synthetic_output_bytes": total_bytes, "synthetic_interval": interval}
    request = urllib.request.Request(
        f"{url}/control/sessions",
        data=json.dumps(spec).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return json.loads(response.read())


def agent_stats(url: str, session_id: str, context: ssl.SSLContext | None) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/control/sessions/{session_id}", timeout=10, context=context) as response:
        return json.loads(response.read())


class ReadCounter:
    """Counts socket reads: calls of asyncio's read-ready callback for a socket transport (under TLS too,
    where the SSL layer sits above it). Independent of how the client parses what it reads."""

    def __init__(self) -> None:
        from asyncio import selector_events

        self.reads = 0
        transport = selector_events._SelectorSocketTransport
        original = transport._read_ready

        def counting(this: Any) -> None:
            self.reads += 1
            original(this)

        transport._read_ready = counting  # type: ignore[method-assign]


async def stream(url: str, total_bytes: int, interval: float, cert: str | None) -> dict[str, float]:
    import boto3

    from bot.ssm.channel import ChannelConfig, DataChannelSession, SessionParams
    from bot.ssm.control import Boto3SessionControl

    context = ssl.create_default_context(cafile=cert) if cert else None
    ssm = boto3.client(
        "ssm", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y",
        verify=cert if cert else True,
    )
    counter = ReadCounter()  # before the connection exists: asyncio binds the callback when it starts reading
    session_info = register(url, total_bytes, interval, context)
    received = 0
    first: dict[str, float] = {}

    def on_output(data: bytes) -> None:
        nonlocal received
        if not received:
            first.update(cpu=cpu_seconds(), wall=time.perf_counter(), rss=rss_mib(), reads=counter.reads)
        received += len(data)

    session = DataChannelSession(
        SessionParams(session_info["sessionId"], session_info["streamUrl"], session_info["tokenValue"]),
        on_output=on_output,
        control=Boto3SessionControl(ssm),
        config=ChannelConfig(),
    )
    result = await session.run()
    cpu, wall = cpu_seconds(), time.perf_counter()
    if received != total_bytes or result.missing_messages:
        raise SystemExit(f"incomplete stream: {received} of {total_bytes} bytes")
    mib = received / MIB
    messages = result.messages_received - 1  # the first message started the clock
    stats = await asyncio.to_thread(agent_stats, url, session_info["sessionId"], context)
    return {
        "retransmissions": stats.get("retransmissions", -1),
        "mib": mib,
        "cpu_s": cpu - first["cpu"],
        "wall_s": wall - first["wall"],
        "messages": messages,
        "reads": counter.reads - first["reads"],  # 0 under uvloop (its reads are not counted)
        "startup_cpu_s": first["cpu"],
        "startup_rss_mib": first["rss"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_channel", description=__doc__.splitlines()[0])
    parser.add_argument("--pattern", choices=("paced", "batched"), default="paced",
                        help="how output arrives: paced 1 KiB per ~1 ms like the agent (default), or batched")
    parser.add_argument("--tls", action="store_true", help="over wss:// with a throwaway certificate")
    parser.add_argument("--mib", type=float, help="MiB of output (default: 8 paced, 50 batched)")
    parser.add_argument("--quick", action="store_true", help="1 MiB (smoke run)")
    parser.add_argument("--uvloop", action="store_true", help="run the client on uvloop (installed separately; measured: no gain, so not a dependency)")
    parser.add_argument("--write-cert", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_cert:
        write_throwaway_certificate(args.write_cert)
        return 0
    mib = 1.0 if args.quick else args.mib or (8.0 if args.pattern == "paced" else 50.0)
    total = int(mib * MIB)
    interval = PACED_INTERVAL if args.pattern == "paced" else 0.0
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        tls: tuple[str, str] | None = None
        if args.tls:
            subprocess.run([sys.executable, "-m", "benchmarks.data_channel", "--write-cert", tmp], check=True,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            tls = (os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"))
            os.environ["SSL_CERT_FILE"] = tls[0]  # the client's default context trusts it; nothing else does
        proc, url = start_agent(tls)
        try:
            runner = asyncio.run
            if args.uvloop:
                import uvloop

                runner = uvloop.run  # type: ignore[assignment]  # (frames_per_read counts asyncio reads only)
            figures = runner(stream(url, total, interval, tls[0] if tls else None))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"mib: {figures['mib']:.1f}")
    print(f"paced_interval_ms: {interval * 1000:g}")
    print(f"tls: {int(args.tls)}")
    print(f"client_cpu_ms_per_mib: {figures['cpu_s'] * 1000 / figures['mib']:.1f}")
    print(f"client_cpu_us_per_message: {figures['cpu_s'] * 1e6 / max(1, figures['messages']):.1f}")
    print(f"frames_per_read: {figures['messages'] / max(1, figures['reads']):.2f}")
    print(f"agent_retransmissions: {figures['retransmissions']}")  # > 0: acks came later than the agent's RTO
    print(f"end_to_end_mib_s: {figures['mib'] / figures['wall_s']:.2f}")
    print(f"startup_cpu_ms: {figures['startup_cpu_s'] * 1000:.0f}")
    print(f"startup_rss_mib: {figures['startup_rss_mib']:.1f}")
    print(f"client_peak_rss_mib: {peak_rss_mib:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
