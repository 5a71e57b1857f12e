"""The client's exception tree: what to do next is in the type.

``RetryableError``: the request was not processed (or may be repeated safely); try later.
``PermanentError``: the API refused it (4xx other than 429); repeating changes nothing.
``OutcomeUnknown``: a non-idempotent write left and its result is unknown; read back first.

Messages name the method, path, status and the API's error codes, never the API key.
"""

from __future__ import annotations

from bridge.incidentio.models import ErrorResponse


class IncidentIOError(Exception):
    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class RetryableError(IncidentIOError):
    pass


class ConnectionFailed(RetryableError):
    pass


class RequestTimeout(RetryableError):
    pass


class ServerError(RetryableError):
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
    def __init__(self, message: str, *, retry_after: float | None, method: str = "", path: str = "") -> None:
        super().__init__(message, method=method, path=path)
        self.retry_after = retry_after


class PermanentError(IncidentIOError):
    def __init__(
        self, message: str, *, status: int, error: ErrorResponse | None, method: str = "", path: str = ""
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status
        self.error = error

    @property
    def request_id(self) -> str | None:
        return self.error.request_id if self.error is not None else None


class BadRequest(PermanentError):
    pass


class AuthenticationFailed(PermanentError):
    pass


class Forbidden(PermanentError):
    pass


class NotFound(PermanentError):
    pass


class Conflict(PermanentError):
    pass


class ValidationFailed(PermanentError):
    pass


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
