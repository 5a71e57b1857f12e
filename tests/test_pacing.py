"""Every value in ``bridge/pacing.py`` says why it is what it is, and the app passes them on."""

from __future__ import annotations

import ast
import inspect

from bridge import pacing
from bridge.engine.breaker import Breaker
from bridge.engine.executor import Backoff


def test_every_value_has_its_reason() -> None:
    body = ast.parse(inspect.getsource(pacing)).body
    names = []
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
            reason = (
                after.value.value
                if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                else ""
            )
            assert isinstance(reason, str) and len(reason) > 20, f"{node.target.id} has no reason"
    assert len(names) >= 15


def test_components_default_to_the_named_values() -> None:
    assert (Breaker().interval, Breaker().cap) == (pacing.BREAKER_INTERVAL, pacing.BREAKER_CAP)
    assert (Backoff().base, Backoff().cap) == (pacing.ACTION_BACKOFF_BASE, pacing.ACTION_BACKOFF_CAP)
    # The probe cap stays under the reconcile loop's pass retry cap, which stays under the
    # default reconcile interval: a recovery is noticed by the breaker first.
    assert pacing.BREAKER_CAP < pacing.PASS_RETRY_CAP < 60
