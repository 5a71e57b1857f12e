"""HTTP routes of the daemon that are not webhooks: health, readiness, the admin API."""
