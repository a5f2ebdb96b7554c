"""The soak's Redis link: a cut refuses and drops connections, a restore serves again on the same port."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import redis.exceptions
from chaos.proxy import TcpProxy
from redis.asyncio import Redis

pytestmark = pytest.mark.integration


async def test_a_cut_link_refuses_redis_and_a_restored_one_serves_it_again(redis_url: str) -> None:
    target = urlsplit(redis_url)
    proxy = await TcpProxy(upstream_host=target.hostname or "127.0.0.1", upstream_port=target.port or 6379).start()
    client = Redis(host="127.0.0.1", port=proxy.port, socket_timeout=2, socket_connect_timeout=2)
    try:
        assert await client.ping()
        port = proxy.port

        await proxy.cut_off()
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()

        await proxy.restore()
        assert proxy.port == port
        assert await client.ping()
    finally:
        await client.aclose()
        await proxy.close()
