"""Client for incident.io's Status Page API (V2).

Imports nothing else of ours, so that it can be lifted out as a library and so that the sandbox
(which it is tested against) can never share its mistakes.
"""
