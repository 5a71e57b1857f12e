"""Application factory and lifecycle of ``statusbridge serve``."""
