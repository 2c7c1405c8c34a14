"""The local sandbox: a small mesh on one machine, driven live by the apiserver.

`graysteps sandbox up` starts a supervisor process (`graysteps_lab.sandbox.supervisor`)
that runs, under one state directory:

- the real etcd + kube-apiserver of the test world (Istio CRDs installed), and
  optionally kube-controller-manager + kube-scheduler + kwok so Deployments
  really roll out;
- istiod (its validating webhook registered in the apiserver), a gateway
  Envoy and one sidecar Envoy per caller profile, all configured by istiod
  from the VirtualServices in the apiserver, live; a watch
  (`graysteps_lab.sandbox.vs_watch`) records when each change is served;
- HTTP backends for every catalog service × profile (test-a calls test-b);
- the SQLite whitelist and the cookie service (`graysteps serve-cookie`).

`status` and `down` work from any shell through the state directory
(`graysteps_lab.sandbox.state`).
"""
