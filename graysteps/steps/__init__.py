"""Steps: one module per user action (route, build, deploy, verify, release, rollback, status, whitelist, jobs, cookie_service), and progress, which orchestrates release and route."""
