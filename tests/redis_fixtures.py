"""Fixtures that start real Valkey servers (filled in by the store tests work)."""
