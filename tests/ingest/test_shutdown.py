"""SIGTERM while a webhook is in flight: the delivery is still committed and answered 200 before the
process exits, so Alertmanager never sees an acknowledged alert go missing (nor a dropped one)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bridge.store import open_store
from tests.e2e.harness import serve_process, wait_http

BODY = json.dumps(
    {
        "version": "4",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "InFlight"}, "startsAt": "2026-11-23T10:00:00Z"}
        ],
    }
).encode()


@pytest.mark.real_time(
    "a real statusbridge serve process: waits for its start-up and for SIGTERM to reach it mid-request"
)
async def test_a_webhook_in_flight_at_sigterm_is_committed_and_answered(tmp_path: Path) -> None:
    db = tmp_path / "drain.db"
    proc, url = serve_process(tmp_path, db)
    proc.start()
    assert proc.proc is not None
    try:
        await wait_http(url + "/healthz", proc=proc.proc)
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        head = (
            f"POST /webhooks/alertmanager HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
        ).encode()
        half = len(BODY) // 2
        writer.write(head + BODY[:half])
        await writer.drain()
        await asyncio.sleep(0.3)  # I/O: let the server start handling the request before the signal
        proc.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)  # I/O: the signal reaches the process and shutdown begins
        writer.write(BODY[half:])
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=15)
        writer.close()
        assert status_line.startswith(b"HTTP/1.1 200"), (status_line, proc.log())
        assert await asyncio.to_thread(proc.proc.wait, 20) == 0, proc.log()
    finally:
        proc.stop()
    store = await open_store(f"sqlite:///{db}")
    try:
        (stored,) = await store.list_alerts()
        assert stored.alert.labels["alertname"] == "InFlight"
    finally:
        await store.close()
