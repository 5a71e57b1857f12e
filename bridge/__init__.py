"""StatusBridge: keeps a public status page truthful from alert webhooks."""

__version__ = "0.1.0"
