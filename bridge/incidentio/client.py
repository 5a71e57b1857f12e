"""The async client for incident.io's Status Page API V2: one ``_request``, typed methods.

Retries follow what is safe to repeat (Alertmanager's notify/ is the model: retry only 5xx, 429 and
transport errors, never other 4xx): reads, renames, reschedules and deletes are idempotent; creates
carry an idempotency key; any request answered 429 was not processed. Incident and maintenance
*updates* have no idempotency key, so a 5xx, a timeout or a dropped connection after sending one
raises :class:`OutcomeUnknown` at once: the caller must read the incident back before re-sending.
An update answered 429 is not retried here either: re-sent after the wait, it would land on whatever
a person posted meanwhile, so :class:`RateLimited` goes back to the caller, which reads back first.

Every request first takes a token from the client-side bucket, so a storm of work is spread out
instead of answered with 429s. The API key lives only in the Authorization header of outgoing
requests; it is in no log line, exception message or repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

from bridge.incidentio.errors import (
    PERMANENT_BY_STATUS,
    ConnectionFailed,
    IncidentIOError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RequestTimeout,
    RetryableError,
    ServerError,
)
from bridge.incidentio.models import (
    ComponentStatusItem,
    CreateIncidentRequest,
    CreateIncidentUpdateRequest,
    CreateMaintenanceRequest,
    CreateMaintenanceUpdateRequest,
    ErrorResponse,
    Incident,
    IncidentStatus,
    IncidentUpdate,
    Maintenance,
    MaintenanceComponentStatusItem,
    MaintenanceStatus,
    MaintenanceUpdate,
    PageStructure,
    RenameIncidentRequest,
    StatusPage,
    StructureResponse,
    UpdateMaintenanceRequest,
)
from bridge.incidentio.ratelimit import TokenBucket

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.incident.io"
T = TypeVar("T", bound=BaseModel)

RequestObserver = Callable[[str, str, float, int], None]
"""``(operation, outcome, seconds, attempt)``: outcome is the status code or an error class name."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a retryable call is tried: at most ``attempts`` times within ``total_seconds``, waiting a
    random exponential backoff from ``base_seconds`` up to ``cap_seconds`` (or Retry-After when longer).
    """

    attempts: int = 5
    total_seconds: float = 60.0
    base_seconds: float = 0.5
    cap_seconds: float = 30.0


_SINGLE_ATTEMPT: ContextVar[bool] = ContextVar("statusbridge_single_attempt", default=False)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds, from delta-seconds or an HTTP date; ``None`` when absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class StatusPageClient:
    """incident.io's Status Page API V2 over one aiohttp session; every method raises an IncidentIOError
    subclass (errors.py) whose type says whether to retry, give up or read back first.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_key: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        rate_limiter: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_request: RequestObserver | None = None,
    ) -> None:
        self._session = session
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.rate_limiter = rate_limiter if rate_limiter is not None else TokenBucket(sleep=sleep)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._on_request = on_request

    def __repr__(self) -> str:
        return f"StatusPageClient(base_url={self.base_url!r}, api_key=**********)"

    # --- the one request path -----------------------------------------------------------------

    @staticmethod
    @contextlib.contextmanager
    def single_attempt() -> Iterator[None]:
        """Calls made inside are tried once, whatever the retry policy: a caller that paces its own
        retries (a breaker's probe during an outage) must not multiply each one."""
        token = _SINGLE_ATTEMPT.set(True)
        try:
            yield
        finally:
            _SINGLE_ATTEMPT.reset(token)

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool,
        gone_ok_on_retry: bool = False,
    ) -> Any:
        def should_retry(exc: BaseException) -> bool:
            # A write without an idempotency key answered 429 was not processed, but re-sending it
            # after the wait would land on whatever a person posted meanwhile: the caller re-plans
            # and reads the incident back first.
            if not idempotent and isinstance(exc, RateLimited):
                return False
            return isinstance(exc, RetryableError)

        def wait(state: RetryCallState) -> float:
            backoff = wait_random_exponential(multiplier=self.retry.base_seconds, max=self.retry.cap_seconds)(
                state
            )
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                return max(exc.retry_after, backoff)
            return backoff

        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 if _SINGLE_ATTEMPT.get() else self.retry.attempts)
            | stop_after_delay(self.retry.total_seconds),
            wait=wait,
            retry=retry_if_exception(should_retry),
            sleep=self._sleep,
            reraise=True,
        )
        attempt = 0
        async for try_ in retrying:
            with try_:
                attempt += 1
                try:
                    return await self._once(operation, method, path, params, body, idempotent, attempt)
                except PermanentError as exc:
                    if gone_ok_on_retry and exc.status == 404 and attempt > 1:
                        return None
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _once(
        self,
        operation: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        idempotent: bool,
        attempt: int,
    ) -> Any:
        await self.rate_limiter.acquire()
        started = time.monotonic()
        headers = {
            "Authorization": f"Bearer {self._key.get_secret_value()}",
            "Accept": "application/json",
            "User-Agent": "statusbridge",
        }
        outcome = "error"
        try:
            try:
                async with self._session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=self._timeout,
                ) as resp:
                    outcome = str(resp.status)
                    self.rate_limiter.observe(resp.headers)
                    raw = await resp.read()
                    return self._answer(method, path, resp, raw, idempotent)
            except aiohttp.ClientConnectorError as exc:
                outcome = "ConnectionFailed"
                # Refused before the request could have left: a retryable error even for a write.
                raise ConnectionFailed(
                    f"{method} {path}: cannot connect to {self.base_url}: {exc.os_error.strerror or exc.os_error}",
                    method=method,
                    path=path,
                ) from exc
            except TimeoutError as exc:
                outcome = "RequestTimeout"
                error: IncidentIOError = RequestTimeout(
                    f"{method} {path}: no answer within {self._timeout.total}s", method=method, path=path
                )
                raise self._unknown_unless(idempotent, error) from exc
            except (aiohttp.ClientError, OSError) as exc:
                outcome = "ConnectionFailed"
                error = ConnectionFailed(
                    f"{method} {path}: connection failed: {type(exc).__name__}", method=method, path=path
                )
                raise self._unknown_unless(idempotent, error) from exc
        finally:
            seconds = time.monotonic() - started
            log.debug(
                "incident.io %s %s -> %s in %.3fs (attempt %d)", method, path, outcome, seconds, attempt
            )
            if self._on_request is not None:
                self._on_request(operation, outcome, seconds, attempt)

    @staticmethod
    def _unknown_unless(idempotent: bool, error: IncidentIOError) -> IncidentIOError:
        """``error`` itself for a request that may be repeated; for a write, the OutcomeUnknown that
        says so. The caller raises it ``from`` what went wrong, so the cause stays on the chain."""
        return error if idempotent else StatusPageClient._outcome_unknown(error)

    @staticmethod
    def _outcome_unknown(error: IncidentIOError) -> OutcomeUnknown:
        return OutcomeUnknown(
            f"{error} — the write may or may not have been applied; read it back before re-sending",
            method=error.method,
            path=error.path,
        )

    def _answer(
        self,
        method: str,
        path: str,
        resp: aiohttp.ClientResponse,
        raw: bytes,
        idempotent: bool,
    ) -> Any:
        status = resp.status
        if 200 <= status < 300:
            if status == 204 or not raw:
                return None
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise ServerError(
                    f"{method} {path}: answer is not JSON", status=status, method=method, path=path
                ) from exc
        error = _parse_error(raw)
        detail = error.summary() if error else (raw[:200].decode(errors="replace") or resp.reason or "")
        request_id = f" (request {error.request_id})" if error and error.request_id else ""
        message = f"{method} {path}: {status} {detail}{request_id}"
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            self.rate_limiter.pause(retry_after if retry_after is not None else 1.0)
            raise RateLimited(message, retry_after=retry_after, method=method, path=path)
        if status >= 500 or status == 408:
            server = ServerError(message, status=status, method=method, path=path, error=error)
            if idempotent:
                raise server
            raise self._outcome_unknown(server) from server
        cls = PERMANENT_BY_STATUS.get(status, PermanentError)
        raise cls(message, status=status, error=error, method=method, path=path)

    async def _get(
        self, operation: str, path: str, model: type[T], key: str, params: Mapping[str, Any] | None = None
    ) -> T:
        data = await self._request(operation, "GET", path, params=params, idempotent=True)
        return _parse(model, data, key, f"GET {path}")

    async def _paginate(
        self, operation: str, path: str, key: str, model: type[T], params: Mapping[str, Any]
    ) -> AsyncIterator[T]:
        after: str | None = None
        while True:
            query = {**params, "page_size": 250, **({"after": after} if after else {})}
            data = await self._request(operation, "GET", path, params=query, idempotent=True)
            items = data.get(key) if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise ServerError(f"GET {path}: answer lacks {key}", status=200, method="GET", path=path)
            for item in items:
                yield model.model_validate(item)
            after = (data.get("pagination_meta") or {}).get("after")
            if not after or not items:
                return

    # --- status pages ---------------------------------------------------------------------------

    async def list_status_pages(self) -> list[StatusPage]:
        """Every status page the key can see, all pages of the listing fetched."""
        return [
            p
            async for p in self._paginate(
                "ListStatusPages", "/v2/status_pages", "status_pages", StatusPage, {}
            )
        ]

    async def show_status_page(self, status_page_id: str) -> StatusPage:
        """One status page; raises NotFound when the key cannot see it."""
        return await self._get(
            "ShowStatusPage", f"/v2/status_pages/{status_page_id}", StatusPage, "status_page"
        )

    async def show_structure(self, status_page_id: str) -> PageStructure:
        """The page's components, groups and sub-pages, flattened (ShowStatusPageStructure)."""
        data = await self._request(
            "ShowStatusPageStructure", "GET", f"/v2/status_page_structures/{status_page_id}", idempotent=True
        )
        structure = _parse(StructureResponse, data, "current_structure", "GET structure")
        return PageStructure.from_items(status_page_id, structure.items)

    # --- incidents ------------------------------------------------------------------------------

    def iter_incidents(
        self, status_page_id: str, *, component_id: str | None = None
    ) -> AsyncIterator[Incident]:
        """The page's incidents (those touching ``component_id`` when given), fetched page by page as
        the iteration goes; nothing is requested until it starts.
        """
        params = {
            "status_page_id": status_page_id,
            **({"component_id": component_id} if component_id else {}),
        }
        return self._paginate(
            "ListStatusPageIncidents", "/v2/status_page_incidents", "status_page_incidents", Incident, params
        )

    async def list_incidents(self, status_page_id: str, *, component_id: str | None = None) -> list[Incident]:
        """All of the page's incidents (those touching ``component_id`` when given)."""
        return [i async for i in self.iter_incidents(status_page_id, component_id=component_id)]

    async def create_incident(
        self,
        *,
        status_page_id: str,
        name: str,
        message: str,
        idempotency_key: str,
        notify_subscribers: bool = False,
        incident_status: IncidentStatus = IncidentStatus.INVESTIGATING,
        component_statuses: Mapping[str, str] | None = None,
    ) -> Incident:
        """Publish an incident; safe to retry, since the API answers a repeated ``idempotency_key`` with the
        incident it created the first time.
        """
        request = CreateIncidentRequest(
            status_page_id=status_page_id,
            name=name,
            incident_status=incident_status,
            message=message,
            idempotency_key=idempotency_key,
            notify_subscribers=notify_subscribers,
            component_statuses=_items(component_statuses, ComponentStatusItem),
        )
        data = await self._request(
            "CreateStatusPageIncident",
            "POST",
            "/v2/status_page_incidents",
            body=request.body(),
            idempotent=True,
        )
        return _parse(Incident, data, "status_page_incident", "POST /v2/status_page_incidents")

    async def show_incident(self, incident_id: str) -> Incident:
        """One incident with all its updates; raises NotFound when it was deleted."""
        return await self._get(
            "ShowStatusPageIncident",
            f"/v2/status_page_incidents/{incident_id}",
            Incident,
            "status_page_incident",
        )

    async def rename_incident(self, incident_id: str, name: str) -> Incident:
        """Change an incident's name (idempotent, so retried); returns the incident as renamed."""
        path = f"/v2/status_page_incidents/{incident_id}"
        data = await self._request(
            "UpdateStatusPageIncident",
            "PUT",
            path,
            body=RenameIncidentRequest(name=name).body(),
            idempotent=True,
        )
        return _parse(Incident, data, "status_page_incident", f"PUT {path}")

    async def create_incident_update(
        self,
        *,
        incident_id: str,
        message: str,
        notify_subscribers: bool = False,
        incident_status: IncidentStatus | None = None,
        component_statuses: Mapping[str, str] | None = None,
    ) -> IncidentUpdate:
        """Publish an update (new status, message, component statuses). It has no idempotency key: after a
        sent request failed it raises OutcomeUnknown, and a 429 comes back as RateLimited, not retried.
        """
        request = CreateIncidentUpdateRequest(
            status_page_incident_id=incident_id,
            message=message,
            notify_subscribers=notify_subscribers,
            incident_status=incident_status,
            component_statuses=_items(component_statuses, ComponentStatusItem),
        )
        data = await self._request(
            "CreateStatusPageIncidentUpdate",
            "POST",
            "/v2/status_page_incident_updates",
            body=request.body(),
            idempotent=False,
        )
        return _parse(
            IncidentUpdate, data, "status_page_incident_update", "POST /v2/status_page_incident_updates"
        )

    # --- maintenances ---------------------------------------------------------------------------

    async def list_maintenances(
        self, status_page_id: str, *, component_id: str | None = None
    ) -> list[Maintenance]:
        """All of the page's maintenance windows (those touching ``component_id`` when given)."""
        params = {
            "status_page_id": status_page_id,
            **({"component_id": component_id} if component_id else {}),
        }
        path = "/v2/status_page_maintenances"
        return [
            m
            async for m in self._paginate(
                "ListStatusPageMaintenances", path, "status_page_maintenances", Maintenance, params
            )
        ]

    async def create_maintenance(
        self,
        *,
        status_page_id: str,
        name: str,
        message: str,
        idempotency_key: str,
        affected_component_ids: Sequence[str],
        start_at: datetime,
        end_at: datetime,
        notify_subscribers: bool = False,
        maintenance_status: MaintenanceStatus = MaintenanceStatus.SCHEDULED,
        automate_maintenance_status: bool | None = None,
    ) -> Maintenance:
        """Schedule a maintenance window; safe to retry (``idempotency_key``, as for create_incident)."""
        request = CreateMaintenanceRequest(
            status_page_id=status_page_id,
            name=name,
            maintenance_status=maintenance_status,
            idempotency_key=idempotency_key,
            affected_component_ids=list(affected_component_ids),
            start_at=start_at,
            end_at=end_at,
            message=message,
            notify_subscribers=notify_subscribers,
            automate_maintenance_status=automate_maintenance_status,
        )
        data = await self._request(
            "CreateStatusPageMaintenance",
            "POST",
            "/v2/status_page_maintenances",
            body=request.body(),
            idempotent=True,
        )
        return _parse(Maintenance, data, "status_page_maintenance", "POST /v2/status_page_maintenances")

    async def show_maintenance(self, maintenance_id: str) -> Maintenance:
        """One maintenance window with its updates; raises NotFound when it was deleted."""
        return await self._get(
            "ShowStatusPageMaintenance",
            f"/v2/status_page_maintenances/{maintenance_id}",
            Maintenance,
            "status_page_maintenance",
        )

    async def update_maintenance(
        self, maintenance_id: str, *, name: str, start_at: datetime, end_at: datetime
    ) -> Maintenance:
        """Rename and reschedule a window (idempotent, so retried); returns it as changed."""
        path = f"/v2/status_page_maintenances/{maintenance_id}"
        body = UpdateMaintenanceRequest(name=name, start_at=start_at, end_at=end_at).body()
        data = await self._request("UpdateStatusPageMaintenance", "PUT", path, body=body, idempotent=True)
        return _parse(Maintenance, data, "status_page_maintenance", f"PUT {path}")

    async def delete_maintenance(self, maintenance_id: str) -> None:
        """Delete a window. A 404 after a retried DELETE means the first attempt did it: that is success."""
        path = f"/v2/status_page_maintenances/{maintenance_id}"
        await self._request(
            "DeleteStatusPageMaintenance", "DELETE", path, idempotent=True, gone_ok_on_retry=True
        )

    async def create_maintenance_update(
        self,
        *,
        maintenance_id: str,
        message: str,
        notify_subscribers: bool = False,
        maintenance_status: MaintenanceStatus | None = None,
        component_statuses: Mapping[str, str] | None = None,
    ) -> MaintenanceUpdate:
        """Publish a maintenance update; like create_incident_update, a failure after sending is
        OutcomeUnknown and a 429 is not retried.
        """
        request = CreateMaintenanceUpdateRequest(
            status_page_maintenance_id=maintenance_id,
            message=message,
            notify_subscribers=notify_subscribers,
            maintenance_status=maintenance_status,
            component_statuses=_items(component_statuses, MaintenanceComponentStatusItem),
        )
        data = await self._request(
            "CreateStatusPageMaintenanceUpdate",
            "POST",
            "/v2/status_page_maintenance_updates",
            body=request.body(),
            idempotent=False,
        )
        return _parse(
            MaintenanceUpdate,
            data,
            "status_page_maintenance_update",
            "POST /v2/status_page_maintenance_updates",
        )


ItemT = TypeVar("ItemT", ComponentStatusItem, MaintenanceComponentStatusItem)


def _items(statuses: Mapping[str, str] | None, model: type[ItemT]) -> list[ItemT] | None:
    if statuses is None:
        return None
    return [model.model_validate({"component_id": c, "component_status": s}) for c, s in statuses.items()]


def _parse_error(raw: bytes) -> ErrorResponse | None:
    try:
        return ErrorResponse.model_validate_json(raw)
    except ValidationError:
        return None


def _parse(model: type[T], data: Any, key: str, where: str) -> T:
    if not isinstance(data, dict) or key not in data:
        raise ServerError(f"{where}: answer lacks {key}", status=200)
    try:
        return model.model_validate(data[key])
    except ValidationError as exc:
        raise ServerError(
            f"{where}: answer does not match the API's schema: {exc.error_count()} error(s)", status=200
        ) from exc
