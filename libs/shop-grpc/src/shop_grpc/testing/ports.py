"""Free loopback ports, for servers a test starts at an address it must know beforehand."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago.

    Another process may take it before the test binds it; servers that can report the port
    they bound (``GrpcServer.start``) should listen on port 0 instead.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
