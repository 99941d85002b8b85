"""The Kubernetes backend's pieces (issue 10): a Space as Kubernetes objects, applied to a cluster, read back as facts.

- `manifests`: pure functions, a Space's release → its Deployment, Service, Secret, ConfigMap, PVC, NetworkPolicy;
- `quantities`: flavor sizes ⇄ Kubernetes quantities;
- `capacity`: what the cluster's nodes can hold (the hardware catalog's capacity; "no node has an A10G");
- `health`: Deployment, ReplicaSet and Pod conditions and events → a Space's stage and errorMessage;
- `objects`: the only module here that talks to an API server (apply, scale, delete by label), through the official
  ``kubernetes`` client.

Nothing outside ``runtime.backends`` imports this package (import-linter); only APIs already in Kubernetes 1.20
are used (core/v1, apps/v1, networking.k8s.io/v1, coordination.k8s.io/v1), so the same code runs on current clusters.
"""
