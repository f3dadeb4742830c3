"""Echo party for the transport benchmark: connect, send every message back until "stop".

    python benchmarks/_echo.py HOST:PORT [TLS_DIR [LINK]]

TLS_DIR '' = plain TCP; LINK (``Link.parse`` text) shapes what this end sends.
"""

import sys

from pet.transport import Link, tcp
from pet.transport.tls import TLSConfig


def main() -> int:
    host, port = tcp.parse_address(sys.argv[1])
    tls = None
    if len(sys.argv) > 2 and sys.argv[2]:
        tls = TLSConfig.from_dir(sys.argv[2], "party1")
    channel = tcp.connect(host, port, tls=tls, retry_for=60)
    if len(sys.argv) > 3 and sys.argv[3]:
        channel = Link.parse(sys.argv[3]).wrap(channel)
    with channel:
        while True:
            message = channel.recv()
            if isinstance(message, str) and message == "stop":
                return 0
            channel.send(message)


if __name__ == "__main__":
    raise SystemExit(main())
