import os
from io import BytesIO

from django.conf import settings
from django.core.wsgi import get_wsgi_application


class ChunkedBodyReader:
    """Django reads a request body by CONTENT_LENGTH alone, so a `Transfer-Encoding: chunked`
    body would read as empty. When the server has de-chunked it (`wsgi.input_terminated`, as
    gunicorn does), read it to its end here, at most one byte over the upload limit, and give
    Django its length: a body over the limit then gets the usual 413. A chunked body the
    server can't end is refused with 411 (`sending.api.errors.LengthRequiredMiddleware`)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if (
            environ.get("wsgi.input_terminated")
            and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
            and not environ.get("CONTENT_LENGTH")
        ):
            body = _read_at_most(environ["wsgi.input"], settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
            environ["wsgi.input"] = BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _read_at_most(stream, limit: int) -> bytes:
    parts, size = [], 0
    while size < limit:
        part = stream.read(min(64 * 1024, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyproject.settings")
application = ChunkedBodyReader(get_wsgi_application())
