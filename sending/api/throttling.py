import time

from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    """API_RATE_LIMIT requests per API key, counted in the shared cache.

    A fixed-window counter: one small integer per key and window, where DRF's sliding window
    would read and rewrite the list of every request time (3,000 floats at the default rate) on
    each request. The price: a client may make up to twice the rate across a window's edge.
    With Redis the count is one round trip (`incr_with_expiry`, notifyproject/cache.py).
    """

    scope = "api_key"
    timer = time.time  # seam for tests

    def allow_request(self, request, view):
        if request.auth is None:
            return True
        # The key's hash, not its row id: ids restart in a new database, hashes never repeat.
        now = self.timer()
        window = int(now // self.duration)
        key = f"throttle:{self.scope}:{request.auth.key_hash}:{window}"
        count = _window_count(key, timeout=self.duration + 1)
        self.retry_after = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self):
        return self.retry_after


def _window_count(key: str, *, timeout: int) -> int:
    if hasattr(cache, "incr_with_expiry"):
        return cache.incr_with_expiry(key, timeout)
    cache.add(key, 0, timeout=timeout)  # the database cache, without Redis
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1
