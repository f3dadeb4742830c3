"""``pet demo``: the main job of the README.

Until the full two-party demo (PSI, XGBoost, SQL, Leiden, DP) lands, this is a two-process
loopback round trip of a large numpy array: party 0 listens, starts party 1 as a separate OS
process that connects back, sends it the array ``--rounds`` times and checks each echo, over
plain TCP and then over mutual TLS with throwaway certificates, and prints the throughput.

``--party 1 --connect HOST:PORT`` runs the echoing side alone (for two terminals or hosts);
``--party 0 --listen HOST:PORT`` the sending side alone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import numpy as np

from pet.errors import ProtocolError, TransportError
from pet.transport import make_test_pki, tcp
from pet.transport.tls import TLSConfig

_STOP = "stop"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="two-party demo over loopback (currently: array round-trip throughput, TCP and TLS)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--size-mb", type=float, default=64.0, help="array size in MB (default 64)")
    p.add_argument("--rounds", type=int, default=5, help="round trips per transport (default 5)")
    p.add_argument("--party", type=int, choices=(0, 1), help="run one side only")
    side = p.add_mutually_exclusive_group()
    side.add_argument("--listen", metavar="HOST:PORT", help="party 0: address to listen on")
    side.add_argument("--connect", metavar="HOST:PORT", help="party 1: address of party 0")
    p.add_argument("--tls-dir", metavar="DIR", help="use mutual TLS with ca.pem, party<N>.pem/.key in DIR")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the peer")
    p.set_defaults(func=run)


def _tls_for(party: int, tls_dir: str | None) -> TLSConfig | None:
    if tls_dir is None:
        return None
    return TLSConfig(cert=f"{tls_dir}/party{party}.pem", key=f"{tls_dir}/party{party}.key",
                     ca=f"{tls_dir}/ca.pem")


def echo_party(address: str, *, tls: TLSConfig | None, timeout: float) -> int:
    """Party 1: connect, echo every array back until party 0 says stop."""
    host, port = tcp.parse_address(address)
    with tcp.connect(host, port, tls=tls, timeout=timeout, retry_for=timeout) as channel:
        while True:
            message = channel.recv()
            if isinstance(message, str) and message == _STOP:
                return 0
            channel.send(message)


def sender_party(channel, *, size_mb: float, rounds: int) -> tuple[float, int]:
    """Party 0: send a random array ``rounds`` times, check the echoes; return (GB/s, bytes)."""
    n = max(1, int(size_mb * (1 << 20)) // 8)
    data = np.frombuffer(np.random.default_rng(0).bytes(n * 8), dtype=np.uint64)  # not-secret
    channel.send(data[:1])  # warm-up
    channel.recv()
    before = channel.stats.snapshot()
    start = time.perf_counter()
    for _ in range(rounds):
        channel.send(data)
        echo = channel.recv()
        if echo.shape != data.shape or not np.array_equal(echo, data):
            raise ProtocolError("the echoed array differs from the one sent")
    seconds = time.perf_counter() - start
    moved = (channel.stats - before).bytes_total
    channel.send(_STOP)
    return moved / seconds / 1e9, moved


def _run_pair(label: str, *, tls_dir: str | None, args) -> float:
    tls0 = _tls_for(0, tls_dir)
    with tcp.Listener("127.0.0.1", 0, tls=tls0, timeout=args.timeout) as listener:
        cmd = [sys.executable, "-m", "pet", "demo", "--party", "1", "--connect",
               f"127.0.0.1:{listener.port}", "--timeout", str(args.timeout)]
        if tls_dir:
            cmd += ["--tls-dir", tls_dir]
        child = subprocess.Popen(cmd)
        try:
            channel = listener.accept(accept_timeout=args.timeout)
            with channel:
                rate, moved = sender_party(channel, size_mb=args.size_mb, rounds=args.rounds)
        finally:
            try:
                child.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                child.kill()
    if child.returncode != 0:
        raise TransportError(f"party 1 ({label}) exited with status {child.returncode}")
    print(f"{label:<22} {args.rounds} x {args.size_mb:g} MB round trips: "
          f"{rate:6.2f} GB/s ({moved / 1e6:.0f} MB moved)")
    return rate


def run(args) -> int:
    if args.party == 1:
        if not args.connect:
            print("pet demo: --party 1 needs --connect HOST:PORT", file=sys.stderr)
            return 2
        return echo_party(args.connect, tls=_tls_for(1, args.tls_dir), timeout=args.timeout)
    if args.party == 0:
        if not args.listen:
            print("pet demo: --party 0 needs --listen HOST:PORT", file=sys.stderr)
            return 2
        host, port = tcp.parse_address(args.listen)
        with tcp.listen(host, port, tls=_tls_for(0, args.tls_dir), accept_timeout=args.timeout) as channel:
            rate, _ = sender_party(channel, size_mb=args.size_mb, rounds=args.rounds)
        print(f"round trips: {rate:.2f} GB/s")
        return 0
    print("pet demo: two processes over loopback, party 0 sends, party 1 echoes")
    plain = _run_pair("plain TCP", tls_dir=None, args=args)
    with tempfile.TemporaryDirectory(prefix="pet-demo-pki-") as tmp:
        make_test_pki(tmp, names=("party0", "party1"))
        tls = _run_pair("mutual TLS", tls_dir=tmp, args=args)
    print(f"TLS overhead: {100 * (plain / tls - 1):.0f}% more time per byte")
    return 0
