"""The model: catalog, strategy, plan, manifests, image references; pure data and its checks."""
