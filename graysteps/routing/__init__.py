"""Routing: the strategies as pure, repeatable transforms of a VirtualService (operations); the cluster write is the route step's."""
