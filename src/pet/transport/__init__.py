"""How parties talk: in-memory, TCP and mutual-TLS channels over a safe wire codec.

- :class:`Channel` -- ``send(obj)``, ``recv()``, ``exchange(obj)``, ``close()``, context
  manager, and ``stats`` (bytes and messages in each direction).
- :func:`local_pair` -- two connected in-memory ends (threads of one process).
- :mod:`pet.transport.tcp` -- ``listen(host, port, tls=...)`` / ``connect(...)``.
- :mod:`pet.transport.tls` -- :class:`~pet.transport.tls.TLSConfig` and
  :func:`~pet.transport.tls.make_test_pki` (throwaway CA and party certificates).
- :func:`run_parties` -- run party functions in threads joined by in-memory channels.
- :class:`Link` -- a shaped link (round trip, bandwidth) for WAN figures on one machine;
  ``run_parties(..., link=Link(rtt=0.02, bandwidth=100e6))`` or ``Link(...).wrap(channel)``.
- :mod:`pet.transport.codec` -- the frame format. Only None, bool, int, float, str, bytes,
  numeric/bool numpy arrays and lists/tuples/dicts of these cross the wire; never pickle.

Limits, on every channel: ``max_frame_size`` (an oversized length prefix is refused before
anything is allocated), ``max_depth`` (container nesting), and ``timeout`` on every blocking
receive (``None`` waits forever).
"""

from pet.transport import codec, tcp, tls
from pet.transport.channel import DEFAULT_TIMEOUT, Channel, ChannelStats, LocalChannel, local_pair
from pet.transport.link import Link, ShapedChannel
from pet.transport.runner import run_parties
from pet.transport.stream import StreamChannel
from pet.transport.tls import TLSConfig, make_test_pki

__all__ = [
    "Channel",
    "ChannelStats",
    "LocalChannel",
    "StreamChannel",
    "local_pair",
    "Link",
    "ShapedChannel",
    "run_parties",
    "tcp",
    "tls",
    "codec",
    "TLSConfig",
    "make_test_pki",
    "DEFAULT_TIMEOUT",
]
