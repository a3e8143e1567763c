"""A loopback Hub-compatible server and the datasets it serves (no Textual here)."""
