"""The Panel dashboard: a client of the service's HTTP API."""
