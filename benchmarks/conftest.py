"""Benchmark sizes: small by default (the whole suite in a few minutes), the sizes named in
the issues with ``PET_BENCH_FULL=1``. A per-benchmark variable (documented in each file)
overrides both.

Shaped network links for the benchmarks that take a ``link`` argument (each such test runs
once per link, with ids ``loopback``, ``rtt20ms-1gbit``, ...):
``pytest benchmarks --link rtt=20ms,bw=100mbit`` or ``PET_LINK=rtt=20ms,bw=100mbit``
(the option wins); several links separated by ``;`` (``none`` = unshaped), or ``--link wan``
for the three of the LAN/WAN table: loopback, 20 ms at 1 Gbit/s, 20 ms at 100 Mbit/s.
Default: unshaped only (loopback / in-memory). ``link`` is a
:class:`pet.transport.Link` or None.
"""

import os

FULL = os.environ.get("PET_BENCH_FULL", "") not in ("", "0")


def pick(small, full):
    """``full`` under ``PET_BENCH_FULL=1``, else ``small``."""
    return full if FULL else small


def pytest_addoption(parser):
    parser.addoption("--link", default=None, metavar="SPEC",
                     help="shape every link of the benchmarks that take the link fixture, "
                          "e.g. rtt=20ms,bw=100mbit (default: $PET_LINK, else none)")


def link_spec(config=None):
    """The link text from ``--link`` or ``PET_LINK`` (None when neither is given)."""
    spec = config.getoption("--link") if config is not None else None
    return spec or os.environ.get("PET_LINK") or None


#: ``--link wan``: the links of the LAN/WAN table in benchmarks/README.md
WAN_LINKS = (None, "rtt=20ms,bw=1gbit", "rtt=20ms,bw=100mbit")


def link_specs(config=None) -> list:
    """The link texts to run with (None = unshaped), from ``--link`` / ``PET_LINK``."""
    spec = link_spec(config)
    if spec is None:
        return [None]
    if spec.strip().lower() == "wan":
        return list(WAN_LINKS)
    return [None if part.strip().lower() in ("none", "loopback") else part.strip()
            for part in spec.split(";") if part.strip()]


def _link_id(spec) -> str:
    if spec is None:
        return "loopback"
    return spec.replace("rtt=", "rtt").replace("bw=", "").replace(",", "-")


def pytest_generate_tests(metafunc):
    """Run every benchmark that takes ``link`` once per selected link."""
    if "link" not in metafunc.fixturenames:
        return
    from pet.transport import Link

    specs = link_specs(metafunc.config)
    metafunc.parametrize("link", [None if s is None else Link.parse(s) for s in specs],
                         ids=[_link_id(s) for s in specs])


def shaped(channel, link):
    """``channel`` shaped by ``link`` (unchanged when ``link`` is None)."""
    return channel if link is None else link.wrap(channel)


def link_text(link) -> str:
    """``link`` as ``Link.parse`` text for subprocesses and ``pet dealer --link`` ('' = unshaped)."""
    if link is None:
        return ""
    return f"rtt={link.rtt!r}s" + ("" if link.bandwidth is None else f",bw={link.bandwidth!r}bit")


def link_label(link) -> str:
    """``link`` for ``extra_info`` and printed lines: ``loopback`` or ``rtt 20 ms, 100 Mbit/s``."""
    return "loopback" if link is None else str(link)
