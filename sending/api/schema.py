"""The OpenAPI schema states every error answer (contract section 4), for every operation,
including those added later: a drf-spectacular postprocessing hook adds the error shape to
each 4xx an operation documents without a body, and the answers every API view can give."""

ERROR_SCHEMA = {
    "type": "object",
    "description": "The contract's error shape: one item per problem.",
    "properties": {
        "status_code": {"type": "integer"},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "error": {"type": "string", "description": "ValidationError, AuthError, …"},
                    "message": {"type": "string", "description": "`<field> <problem>` for a field"},
                },
                "required": ["error", "message"],
            },
        },
    },
    "required": ["status_code", "errors"],
}

# What any authenticated API operation can answer, whatever it does.
EVERY_OPERATION = {
    "400": "bad input (every problem at once), or a bad Host header",
    "401": "no API key, or not one of ours",
    "403": "the API key is revoked",
    "429": "over API_RATE_LIMIT for this key; see Retry-After",
}
# The /v2 API answers every refused token 403 AuthError (GOV.UK Notify's answer), never 401.
EVERY_V2_OPERATION = {
    "400": EVERY_OPERATION["400"],
    "403": "AuthError: Invalid token: no token, not a JWT, bad signature, expired, in the "
    "future, unknown issuer, or a revoked key",
    "429": EVERY_OPERATION["429"],
}
WITH_BODY = {
    "411": "a chunked body the server could not read (send Content-Length)",
    "413": "body over 1048576 bytes",
    "415": "Content-Type other than application/json",
}
WITH_PATH_PARAMETER = {"404": "no such object for this service"}


def error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS: error answers and their shape on every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            added = dict(EVERY_V2_OPERATION if path.startswith("/v2/") else EVERY_OPERATION)
            if method in {"put", "post", "patch"}:
                added |= WITH_BODY
            if "{" in path:
                added |= WITH_PATH_PARAMETER
            for code, description in added.items():
                responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                if code.startswith(("4", "5")) and "content" not in response:
                    response["content"] = content
                    if code == "429":
                        response.setdefault("headers", {})["Retry-After"] = {
                            "schema": {"type": "integer"},
                            "description": "seconds until the next window",
                        }
    return result
