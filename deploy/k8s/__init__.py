"""Kubernetes manifests (kustomize); a package only so its tests get a unique module name."""
