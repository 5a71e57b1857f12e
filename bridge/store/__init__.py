"""Durable state: alerts, incident groups, published state, the action log."""
