"""free_port (shop_grpc.testing.ports): a loopback port a test may listen on."""

from __future__ import annotations

import socket

from shop_grpc.testing import free_port


def test_the_port_given_can_be_listened_on() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
