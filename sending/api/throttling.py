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
        # A batch counts each of its notifications (contract section 4).
        cost = getattr(view, "throttle_cost", lambda request: 1)(request)
        count = _window_count(key, timeout=self.duration + 1, amount=cost)
        self.retry_after = (window + 1) * self.duration - now
        if count <= self.num_requests:
            return True
        if cost > 1:  # a refused batch creates nothing: its items must not use up the window
            cache.decr(key, cost)
        return False

    def wait(self):
        return self.retry_after


def _window_count(key: str, *, timeout: int, amount: int) -> int:
    if hasattr(cache, "incr_with_expiry"):
        return cache.incr_with_expiry(key, timeout, amount)
    cache.add(key, 0, timeout=timeout)  # the database cache, without Redis
    try:
        return cache.incr(key, amount)
    except ValueError:  # expired between add and incr
        cache.set(key, amount, timeout=timeout)
        return amount
