"""Rules: pure functions from alerts to status page impacts, loaded from YAML."""
