"""graysteps: gray (canary) releases on Kubernetes + Istio, driven from Jenkins.

Keep this module free of imports: `graysteps --version` must answer fast.
"""

__version__ = "0.1.0"
