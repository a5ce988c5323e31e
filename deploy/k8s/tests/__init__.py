"""Offline checks of the Kubernetes manifests: render, schemas, policy."""
