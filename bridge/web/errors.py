"""The error answers of our handlers, in the one error body (``bridge.ingest.routes.error_body``).

The admin API's OpenAPI document calls it ``Error``; the webhook routes and the framework's own
404/405/413 (``bridge.web.middleware.json_errors``) use the same shape, so a client parses one.
"""

from __future__ import annotations

from aiohttp import web

from bridge.ingest.routes import error_body


def error_response(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON error answer; ``field`` names the request field at fault (422s), when there is one."""
    return web.json_response(error_body(status, message, field), status=status, headers=headers)
