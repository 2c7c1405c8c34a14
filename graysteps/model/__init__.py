"""The model: catalog, strategy, plan, schedule, manifests, image references, tenants, cookies, numbers and the sequential tests; pure data and its checks."""
