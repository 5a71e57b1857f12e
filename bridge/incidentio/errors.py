"""Placeholder: written by the client work."""
