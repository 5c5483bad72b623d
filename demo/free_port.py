"""Prints the first port from START on which HOST can listen (the demo's TensorBoard port).

Usage: python free_port.py HOST START
"""

from __future__ import annotations

import socket
import sys


def free_port(host: str, start: int, tries: int = 100) -> int:
    """The first port in [start, start + tries) that a server on `host` can bind."""
    for port in range(start, start + tries):
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        ):
            with socket.socket(family, kind, proto) as s:
                try:
                    s.bind(address)
                except OSError:
                    break
        else:
            return port
    raise SystemExit(f"no free port from {start} to {start + tries - 1} on {host}; set PORT")


if __name__ == "__main__":
    print(free_port(sys.argv[1], int(sys.argv[2])))
