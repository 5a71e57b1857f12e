"""Webhook authentication: bearer token, basic auth, Grafana's HMAC-SHA256 signature.

Each method is optional; a request is accepted when it satisfies at least one configured method
that applies to its endpoint (HMAC only to Grafana's). All comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr


@dataclass(frozen=True)
class WebhookAuth:
    """The webhook credentials configured: a bearer token, HTTP Basic, and for Grafana an HMAC signature
    within ``hmac_max_skew`` of now. Secrets are compared in constant time.
    """

    bearer: SecretStr | None = None
    basic_user: str | None = None
    basic_password: SecretStr | None = None
    hmac_secret: SecretStr | None = None
    hmac_header: str = "X-Grafana-Alerting-Signature"
    hmac_timestamp_header: str | None = None
    hmac_max_skew: timedelta = timedelta(minutes=5)

    @property
    def open(self) -> bool:
        """Whether no credential is configured at all: every webhook is accepted."""
        return not (self.bearer or self.basic_user or self.hmac_secret)

    def applies_hmac(self, grafana: bool) -> bool:
        """Whether a request to this endpoint must carry a valid HMAC signature (Grafana's, when a secret
        is set).
        """
        return grafana and self.hmac_secret is not None

    def challenge(self, grafana: bool) -> str:
        """``WWW-Authenticate`` for a 401: the schemes this endpoint would accept."""
        schemes = []
        if self.bearer is not None:
            schemes.append('Bearer realm="statusbridge"')
        if self.basic_user is not None:
            schemes.append('Basic realm="statusbridge", charset="UTF-8"')
        if self.applies_hmac(grafana):
            # Not an IANA scheme: it names the header the signature is expected in.
            schemes.append(f'HMAC-SHA256 realm="statusbridge", header="{self.hmac_header}"')
        return ", ".join(schemes) or 'Bearer realm="statusbridge"'

    def header_ok(self, headers: Mapping[str, str]) -> bool:
        """Bearer or basic credentials in the Authorization header."""
        auth = headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if self.bearer is not None and scheme.lower() == "bearer":
            return hmac.compare_digest(_bytes(value.strip()), _bytes(self.bearer.get_secret_value()))
        if self.basic_user is not None and self.basic_password is not None and scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True)
            except ValueError:  # binascii.Error, or a str that is not ASCII
                return False
            user, _, password = decoded.partition(b":")
            # Both comparisons always run: the time taken says nothing about which part was wrong.
            return hmac.compare_digest(user, _bytes(self.basic_user)) & hmac.compare_digest(
                password, _bytes(self.basic_password.get_secret_value())
            )
        return False

    def hmac_ok(self, headers: Mapping[str, str], body: bytes, now: datetime) -> bool:
        """Grafana's signature: lowercase hex HMAC-SHA256 of the raw body (or of ``ts:body``)."""
        assert self.hmac_secret is not None
        signature = headers.get(self.hmac_header)
        if not signature:
            return False
        message = body
        if self.hmac_timestamp_header:
            stamp = headers.get(self.hmac_timestamp_header, "")
            # Unix seconds as Grafana writes them; the length bound keeps int() cheap.
            if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
                return False
            if abs(now.timestamp() - int(stamp)) > self.hmac_max_skew.total_seconds():
                return False
            message = stamp.encode() + b":" + body
        expected = hmac.new(_bytes(self.hmac_secret.get_secret_value()), message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), _bytes(signature.strip().lower()))


def _bytes(value: str) -> bytes:
    """Header text back to bytes; aiohttp keeps undecodable header bytes as surrogate escapes."""
    return value.encode("utf-8", "surrogateescape")
