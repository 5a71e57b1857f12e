"""The daemon's HTTP surface, a module per concern (aiohttp: handlers here, wiring in ``bridge.app``).

- ``middleware``: request ids, requests in flight (for the shutdown drain), JSON error bodies;
- ``health``: ``/healthz`` and ``/readyz``;
- ``admin``: the admin API under ``/api/v1/``, a sub-application behind the admin token, and its
  OpenAPI document (``openapi.json`` beside it, unauthenticated);
- ``maintenance``: the admin API's maintenance windows (``/api/v1/maintenances``);
- ``metrics``: ``/metrics`` (Prometheus), with the gauges computed at scrape time;
- ``widget``: ``/widget``, the status page's Widget API JSON, proxied and cached.

Ingest's webhook routes are ``bridge.ingest``'s own.
"""
