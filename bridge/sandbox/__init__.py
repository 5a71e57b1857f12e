"""A local, incident.io-compatible status page server for trying and testing the bridge.

Written from the spec, independently of the client: it imports nothing of ours but observability
helpers, so that client and server can never share a mistake.
"""
