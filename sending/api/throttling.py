import time

from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    """API_RATE_LIMIT requests per API key, counted in the shared cache.

    A fixed-window counter: one small integer per key and window, where DRF's sliding window
    would read and rewrite the list of every request time (3,000 floats at the default rate) on
    each request. The price: a client may make up to twice the rate across a window's edge.
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
        cache.add(key, 0, timeout=self.duration + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=self.duration + 1)
            count = 1
        self.retry_after = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self):
        return self.retry_after
