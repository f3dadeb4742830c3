"""Echo party for the transport benchmark: connect, send every message back until "stop".

    python benchmarks/_echo.py HOST:PORT [TLS_DIR]
"""

import sys

from pet.transport import tcp
from pet.transport.tls import TLSConfig


def main() -> int:
    host, port = tcp.parse_address(sys.argv[1])
    tls = None
    if len(sys.argv) > 2:
        tls = TLSConfig.from_dir(sys.argv[2], "party1")
    with tcp.connect(host, port, tls=tls, retry_for=60) as channel:
        while True:
            message = channel.recv()
            if isinstance(message, str) and message == "stop":
                return 0
            channel.send(message)


if __name__ == "__main__":
    raise SystemExit(main())
