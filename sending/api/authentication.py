from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from sending.api_keys import api_key_find, api_key_mark_used
from sending.models import ApiKey


class RevokedApiKey(exceptions.PermissionDenied):
    default_detail = _("API key revoked")


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <api key>`: the request acts as the key's service."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header:
            raise exceptions.NotAuthenticated(
                "Missing Authorization header: use 'Bearer <api key>'"
            )
        if header[0].decode(errors="replace").lower() != self.keyword.lower() or len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <api key>'")
        secret = header[1].decode(errors="replace")
        key = api_key_find(secret=secret)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key")
        if key.revoked_at is not None:
            raise RevokedApiKey()
        api_key_mark_used(key=key)
        return key.service, key

    def authenticate_header(self, request):
        return self.keyword


class IsService(BasePermission):
    """The request carries a valid, unrevoked API key (so `request.user` is its Service)."""

    def has_permission(self, request, view):
        return isinstance(request.auth, ApiKey)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "an API key from create_api_key"}
