"""Steps: one module per user action (route, build, deploy, verify, release, rollback, status, whitelist, jobs)."""
