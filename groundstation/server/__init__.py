"""The Tornado server: UDP ingest endpoint, console WebSocket, health and metrics."""
