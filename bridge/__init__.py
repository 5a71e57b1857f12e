"""StatusBridge: keeps a public status page truthful from alert webhooks."""

from importlib.metadata import PackageNotFoundError, version

# The one place the version is written is `pyproject.toml` ([project] version); this reads what the
# installed distribution says. The chart's appVersion and the helm README's image tag follow it
# (tests/test_project.py); the chart's own `version` is bumped independently.
try:
    __version__ = version("statusbridge")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
