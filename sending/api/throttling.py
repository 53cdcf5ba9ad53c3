from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    """API_RATE_LIMIT requests per API key, counted in the shared cache."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None
        # The key's hash, not its row id: ids restart in a new database, hashes never repeat.
        return self.cache_format % {"scope": self.scope, "ident": request.auth.key_hash}
