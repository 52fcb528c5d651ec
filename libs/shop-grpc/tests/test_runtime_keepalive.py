"""Both ends' keepalive settings agree (shop_grpc.keepalive): a client's pings are never
counted as strikes by the server, idle connections included."""

from __future__ import annotations

from shop_grpc import keepalive


def test_the_server_accepts_pings_as_often_as_a_client_sends_them_even_without_calls():
    client, server = dict(keepalive.CLIENT_OPTIONS), dict(keepalive.SERVER_OPTIONS)

    assert server["grpc.http2.min_ping_interval_without_data_ms"] < client["grpc.keepalive_time_ms"]
    assert client["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.keepalive_permit_without_calls"] == 1


def test_a_client_keeps_pinging_an_idle_connection_and_gives_up_on_an_unanswered_ping():
    client = dict(keepalive.CLIENT_OPTIONS)

    assert client["grpc.http2.max_pings_without_data"] == 0
    assert client["grpc.keepalive_timeout_ms"] < client["grpc.keepalive_time_ms"]
