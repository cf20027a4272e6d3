"""The listening socket `serve` binds (lifecycle.listen_socket) gives accepted connections TCP_NODELAY.

Without it every keep-alive answer (headers and body are two writes) waited for the client's delayed
ACK: about 40 ms per request (found with bench/api_load.py)."""

from __future__ import annotations

import asyncio
import socket

from tickstockpl import lifecycle


async def test_accepted_connections_have_nodelay():
    listener = lifecycle.listen_socket("127.0.0.1", 0)
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    try:
        port = listener.getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(accepted, 10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
