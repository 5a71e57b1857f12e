"""The one error body every handler of ours answers with: ``{"error": {"status", "message"}}``.

The admin API's OpenAPI document calls it ``Error``; the webhook routes and the framework's own
404/405/413 (``bridge.web.middleware.json_errors``) use the same shape, so a client parses one.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


def error_response(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON error answer; ``field`` names the request field at fault (422s), when there is one."""
    error: dict[str, Any] = {"status": status, "message": message}
    if field:
        error["field"] = field
    return web.json_response({"error": error}, status=status, headers=headers)
