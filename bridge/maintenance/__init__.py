"""Maintenance windows and their pure math: occurrences and phases as a function of ``now``."""
