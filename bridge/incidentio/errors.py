"""The client's exception tree: what to do next is in the type.

``RetryableError``: the request was not processed (or may be repeated safely); try later.
``PermanentError``: the API refused it (4xx other than 429); repeating changes nothing.
``OutcomeUnknown``: a non-idempotent write left and its result is unknown; read back first.

Messages name the method, path, status and the API's error codes, never the API key.
"""

from __future__ import annotations

from bridge.incidentio.models import ErrorResponse


class IncidentIOError(Exception):
    """Any failure of a client call; ``method`` and ``path`` name the request ('' when not tied to one)."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class RetryableError(IncidentIOError):
    """The request was not processed, or may be repeated safely: the same call may succeed later."""


class ConnectionFailed(RetryableError):
    """No connection, or it broke before an answer; for a write the client raises OutcomeUnknown instead
    unless the connection was refused before anything was sent.
    """


class RequestTimeout(RetryableError):
    """No answer within the client's timeout (seconds); a write that timed out becomes OutcomeUnknown."""


class ServerError(RetryableError):
    """A 5xx or 408 answer, or a 2xx the client cannot read (not JSON, or not the schema's).

    ``error`` is the parsed ErrorResponse body, ``None`` when the body was not one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str = "",
        path: str = "",
        error: ErrorResponse | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status
        self.error = error


class RateLimited(RetryableError):
    """A 429: not processed. ``retry_after`` is the answer's Retry-After in seconds, ``None`` when absent."""

    def __init__(self, message: str, *, retry_after: float | None, method: str = "", path: str = "") -> None:
        super().__init__(message, method=method, path=path)
        self.retry_after = retry_after


class PermanentError(IncidentIOError):
    """Any other answer that is not a 2xx (4xx but 408 and 429): repeating the request changes nothing.

    ``error`` is the parsed ErrorResponse body, ``None`` when the body was not one.
    """

    def __init__(
        self, message: str, *, status: int, error: ErrorResponse | None, method: str = "", path: str = ""
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status
        self.error = error

    @property
    def request_id(self) -> str | None:
        """incident.io's ``request_id`` for support, ``None`` when the answer had no ErrorResponse body."""
        return self.error.request_id if self.error is not None else None


class BadRequest(PermanentError):
    """400 ``invalid_request_error``."""


class AuthenticationFailed(PermanentError):
    """401 ``authentication_error``: the API key is missing, wrong or revoked."""


class Forbidden(PermanentError):
    """403 ``resource_forbidden``: the key lacks the scope (publishing: ``status_pages.publish_updates``)."""


class NotFound(PermanentError):
    """404 ``not_found``: the page, incident or maintenance does not exist, or no longer does."""


class Conflict(PermanentError):
    """409 ``conflict``, most likely a concurrent update of the same record."""


class ValidationFailed(PermanentError):
    """422 ``validation_error``: the body broke a rule of the API; the codes are in ``error``."""


class OutcomeUnknown(IncidentIOError):
    """A write without an idempotency key was sent and its result is unknown.

    ``__cause__`` is what went wrong: the timeout, the connection error or the 5xx answer (ServerError).
    """


PERMANENT_BY_STATUS: dict[int, type[PermanentError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
}
