"""Routing: the seed strategies as operations on VirtualServices (strategy, operations) and their safe write to the cluster (cluster)."""
