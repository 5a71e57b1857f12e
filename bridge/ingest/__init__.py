"""Webhook receivers: validate, authenticate, normalize and durably store alerts before 2xx."""
