"""Desired state, the pure planner, the executor and the reconcile loop."""
