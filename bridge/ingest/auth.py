"""Webhook authentication: bearer token, basic auth, Grafana's HMAC-SHA256 signature.

Each method is optional; a request is accepted when it satisfies at least one configured method
that applies to its endpoint (HMAC only to Grafana's). All comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr


@dataclass(frozen=True)
class WebhookAuth:
    bearer: SecretStr | None = None
    basic_user: str | None = None
    basic_password: SecretStr | None = None
    hmac_secret: SecretStr | None = None
    hmac_header: str = "X-Grafana-Alerting-Signature"
    hmac_timestamp_header: str | None = None
    hmac_max_skew: timedelta = timedelta(minutes=5)

    @property
    def open(self) -> bool:
        return not (self.bearer or self.basic_user or self.hmac_secret)

    def applies_hmac(self, grafana: bool) -> bool:
        return grafana and self.hmac_secret is not None

    def header_ok(self, headers: Mapping[str, str]) -> bool:
        """Bearer or basic credentials in the Authorization header."""
        auth = headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if self.bearer is not None and scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), self.bearer.get_secret_value().encode())
        if self.basic_user is not None and self.basic_password is not None and scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, _, password = decoded.partition(":")
            return hmac.compare_digest(user.encode(), self.basic_user.encode()) & hmac.compare_digest(
                password.encode(), self.basic_password.get_secret_value().encode()
            )
        return False

    def hmac_ok(self, headers: Mapping[str, str], body: bytes, now: datetime) -> bool:
        assert self.hmac_secret is not None
        signature = headers.get(self.hmac_header)
        if not signature:
            return False
        message = body
        if self.hmac_timestamp_header:
            stamp = headers.get(self.hmac_timestamp_header)
            if not stamp:
                return False
            try:
                when = float(stamp)
            except ValueError:
                return False
            if abs(now.timestamp() - when) > self.hmac_max_skew.total_seconds():
                return False
            message = stamp.encode() + b":" + body
        expected = hmac.new(self.hmac_secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.strip().lower())
