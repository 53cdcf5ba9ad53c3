"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

Django's `RedisCacheClient.get_client` builds a new `redis.Redis` for every cache call; with
redis-py 8 that object alone costs about as much CPU as the round trip (two of them were a
tenth of an API create's CPU, bench/README.md). The client is thread-safe and its pool is
fork-aware, so one per pool is enough. `incr_with_expiry` is the rate limit's counter: the
increment and the window's expiry in one round trip, where `add` then `incr` take three.
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ReusingClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients[index] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient

    def incr_with_expiry(self, key: str, timeout: int, amount: int = 1) -> int:
        """Add `amount` to the counter at `key` (made at 0 when missing) and answer it; a
        counter made by this call expires after `timeout` seconds. Atomic, one round trip."""
        key = self.make_and_validate_key(key)
        pipeline = self._cache.get_client(key, write=True).pipeline(transaction=True)
        pipeline.set(key, 0, ex=timeout, nx=True)  # (EXPIRE … NX needs Redis 7)
        pipeline.incr(key, amount)
        _, count = pipeline.execute()
        return count
