"""Start and stop the real servers graysteps is tested against (and the sandbox runs on)."""
