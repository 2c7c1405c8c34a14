"""The audit table: whitelist and release records."""
