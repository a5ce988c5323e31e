"""Secret keys from configuration: one way for every service to hold one.

`caller_ids = SecretKey("CALLER_ID_KEY")` on a service gives its workers the key's bytes,
read from the service's config.yaml (which takes it from the environment). A key that is
missing or too short to resist guessing stops the service at start, with a message
saying what to set: a service must not quietly run with a default or empty key (a keyed
hash with a known key is no better than an unkeyed one). `make run` and the test stacks
get a persistent random key per installation from tools/stack.py; compose and Kubernetes
take it from their secrets.
"""
from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider

MIN_KEY_CHARS = 32


class MissingSecretKey(RuntimeError):
    pass


def check_key(name: str, value: Any) -> bytes:
    """The key's bytes, or MissingSecretKey naming what to set."""
    text = value.strip() if isinstance(value, str) else ""
    if len(text) < MIN_KEY_CHARS:
        raise MissingSecretKey(
            f"{name} is {'not set' if not text else 'too short'}: set it to at least "
            f"{MIN_KEY_CHARS} random characters (e.g. `openssl rand -base64 48`) in the "
            "service's environment; `make run` generates one per installation")
    return text.encode("utf-8")


class SecretKey(DependencyProvider):
    def __init__(self, name: str):
        self.name = name
        self.key = b""

    def setup(self) -> None:
        self.key = check_key(self.name, self.container.config.get(self.name))

    def get_dependency(self, worker_ctx: Any) -> bytes:
        return self.key
