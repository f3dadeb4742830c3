"""One party's process in ``pet demo``: connect, run every step in lock-step, report.

Party 0 listens for party 1; both connect to the dealer when a step needs MPC -- or, dealer-free
(``correlations="ot"``, ``pet demo --no-dealer``), make the correlated randomness between
themselves by oblivious transfer over the peer channel, and no dealer exists. Before each
step the parties exchange its name (a barrier that also catches two different pet versions
running different step lists). Each step's seconds and bytes (peer channel plus dealer
channel) are measured here; the report is written as JSON, atomically.
"""

from __future__ import annotations

import json
import time
import traceback

from pet._io import atomic_output
from pet.demo import require_demo_extras
from pet.demo.steps import STEPS, StepContext
from pet.errors import InputError, PetError, ProtocolError, TransportError
from pet.transport import tcp
from pet.transport.tls import TLSConfig

__all__ = ["run_party", "tls_for"]


def tls_for(name: str, tls_dir: str | None) -> TLSConfig | None:
    """``name``'s TLS files in ``tls_dir``, the peer pinned to the other party (use
    ``.for_dealer()`` for the dealer link); None without a directory."""
    if not tls_dir:
        return None
    return TLSConfig.from_dir(tls_dir, name)


def _check_dealer(party, channel, names, dealer, tls, timeout, insecure, log, dealer_channels,
                  correlations=None) -> dict:
    """Before the first step: connect to the dealer if a step needs MPC and ``dealer`` is given
    (appending the channel to ``dealer_channels``), and agree with the peer on it. Returns
    ``{step: reason}`` for the MPC steps to skip: none when both parties reached the dealer,
    all of them (with a line saying why) when a party has no ``--dealer``. A dealer that was
    given but cannot be reached fails the run at both parties before any step."""
    mpc_steps = [n for n in names if STEPS[n][1]]
    if not mpc_steps:
        return {}
    if correlations == "ot":  # dealer-free: both parties must say so
        if channel.exchange("ot") != "ot":
            raise InputError("this party runs the MPC steps dealer-free (--no-dealer) but the peer does not: "
                             "pass --no-dealer at both parties, or --dealer HOST:PORT at both")
        return {}
    state = "none"
    if dealer is not None:
        d_host, d_port = tcp.parse_address(dealer)
        log(f"[party {party}] connecting to the dealer at {d_host}:{d_port} (steps {', '.join(mpc_steps)} need it) ...")
        try:
            dealer_channels.append(tcp.connect(d_host, d_port, tls=tls.for_dealer() if tls else None,
                                               timeout=timeout, retry_for=min(timeout / 2, 60.0),
                                               insecure=insecure))
            state = "ok"
        except PetError as exc:
            state, error = "unreachable", exc
    peer_state = channel.exchange(state)
    if peer_state == "ot":
        raise InputError("the peer runs the MPC steps dealer-free (--no-dealer) but this party does not: "
                         "pass --no-dealer at both parties, or --dealer HOST:PORT at both")
    if state == "unreachable":
        raise TransportError(f"could not reach the dealer at {dealer}: start `pet dealer --listen {dealer}` (with "
                             f"the same --tls-dir) before the parties, or leave out --dealer to skip the steps "
                             f"{', '.join(mpc_steps)} ({error})")
    if peer_state == "unreachable":
        raise TransportError("the peer could not reach the dealer at its --dealer address; nothing was run "
                             "(start `pet dealer` first)")
    if state == "ok" and peer_state == "ok":
        return {}
    for d in dealer_channels:
        d.close()
    dealer_channels.clear()
    why = "no --dealer was given here" if state == "none" else "the peer was started without --dealer"
    fix = "start `pet dealer --listen HOST:PORT` and pass --dealer HOST:PORT to both parties to run them"
    log(f"[party {party}] skipping the step(s) {', '.join(mpc_steps)}: they need the MPC dealer, and {why}; {fix}")
    return {n: f"needs the MPC dealer, and {why}" for n in mpc_steps}


def run_party(party: int, peer: str, *, dealer: str | None, tls_dir: str | None, report: str | None,
              steps=None, timeout: float = 120.0, workdir: str = "", log=print, insecure: bool = False,
              correlations: str | None = None) -> dict:
    """Run ``steps`` (default: all) as ``party``; return (and write to ``report``) the outcomes.

    With ``tls_dir`` the peer must present ``party<1-P>`` and the dealer ``dealer``; without
    it, non-loopback addresses are refused unless ``insecure``. ``correlations="ot"`` runs the
    MPC steps dealer-free (``dealer`` must be None): the session's base OTs and OT extension go
    over the peer channel and count in its bytes."""
    if correlations not in (None, "ot"):
        raise InputError(f"correlations must be None or 'ot', got {str(correlations)[:20]!r}")
    if correlations == "ot" and dealer is not None:
        raise InputError("pass either a dealer address or correlations='ot' (dealer-free), not both")
    names = list(steps or STEPS)
    require_demo_extras(names)
    tls = tls_for(f"party{party}", tls_dir)
    host, port = tcp.parse_address(peer)
    if party == 0:
        channel = tcp.listen(host, port, tls=tls, timeout=timeout, accept_timeout=timeout, insecure=insecure)
    else:
        channel = tcp.connect(host, port, tls=tls, timeout=timeout, retry_for=timeout, insecure=insecure)
    dealer_channels = []
    sessions = []

    def session():
        """The MPC session with the peer (and the dealer unless dealer-free), opened on first use."""
        from pet.mpc import Session

        if not sessions and correlations == "ot":
            sessions.append(Session(party, channel, correlations="ot"))
        if not sessions:
            if not dealer_channels:
                raise ProtocolError("this step needs the dealer, but no --dealer address was given")
            sessions.append(Session(party, channel, dealer=dealer_channels[0]))
        return sessions[0]

    outcomes: dict = {"party": party, "steps": [], "ok": True}
    ctx = StepContext(party=party, channel=channel, session=session, workdir=workdir, log=log)
    current = "start"
    try:
        log(f"[party {party}] loading the demo data ...")
        ctx.tables()  # outside the steps' timing: importing scikit-learn takes a few seconds
        with channel:
            peer_names = channel.exchange(names)
            if peer_names != names:
                raise ProtocolError(f"the parties run different steps: {names} vs {peer_names}")
            current = "dealer check"
            skipped = _check_dealer(party, channel, names, dealer, tls, timeout, insecure, log, dealer_channels,
                                    correlations)
            if dealer_channels:
                session()  # at once: the dealer drops a connection that stays silent (pet.mpc.dealer.HELLO_TIMEOUT)
            for i, name in enumerate(names, 1):
                current = name
                if name in skipped:
                    outcomes["steps"].append({"step": name, "ok": True, "skipped": skipped[name], "seconds": 0,
                                              "peer_bytes": 0, "dealer_bytes": 0,
                                              "result": "", "learned": ""})
                    log(f"[party {party}] step {i}/{len(names)}: {name} SKIPPED: {skipped[name]}")
                    continue
                if channel.exchange(["step", name]) != ["step", name]:
                    raise ProtocolError(f"peer is not at step {name!r}")
                log(f"[party {party}] step {i}/{len(names)}: {name} ...")
                before = channel.stats.snapshot()
                dealer_before = sum(d.stats.bytes_total for d in dealer_channels)
                start = time.perf_counter()
                outcome = STEPS[name][0](ctx)
                seconds = time.perf_counter() - start
                moved = (channel.stats - before).bytes_total
                dealer_bytes = sum(d.stats.bytes_total for d in dealer_channels) - dealer_before
                outcomes["steps"].append({"step": name, "ok": True, "seconds": round(seconds, 3),
                                          "peer_bytes": moved, "dealer_bytes": dealer_bytes,
                                          "result": outcome.result, "learned": outcome.learned,
                                          "extra": outcome.extra})
                log(f"[party {party}] step {name} done in {seconds:.2f} s")
    except Exception as exc:  # reported, and the process exits non-zero
        outcomes["ok"] = False
        outcomes["steps"].append({"step": current, "ok": False, "error": f"{type(exc).__name__}: {exc}",
                                  "trace": traceback.format_exc(limit=6)})
        log(f"[party {party}] step {current} FAILED: {type(exc).__name__}: {exc}")
    finally:
        for s in sessions:
            try:
                s.close()
            except PetError:  # the dealer may be gone already
                pass
        for d in dealer_channels:
            d.close()
    if report:
        with atomic_output(report) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(outcomes, fh, indent=1, default=str)
    return outcomes
