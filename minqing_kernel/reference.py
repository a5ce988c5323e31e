"""Reference data a service reads often and changes rarely (routing rules, categories),
held per process and reread after a time: one way for every service, as a nameko
DependencyProvider so that no module holds it as a global."""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from nameko.extensions import DependencyProvider


class TimedReference:
    """What `load(source)` returns, reread when older than `ttl_s` or after invalidate()
    (an admin's change in this process applies at once; other processes within ttl_s)."""

    def __init__(self, load: Callable[[Any], Any], ttl_s: float):
        self._load, self.ttl_s = load, ttl_s
        self._value: Any = None
        self._loaded_at: float | None = None
        self._generation = 0

    def fresh(self, source) -> Any:
        now = time.monotonic()
        if self._loaded_at is None or now - self._loaded_at > self.ttl_s:
            generation = self._generation
            self._value = self._load(source)
            # A change invalidated while this load ran (another greenthread) may be
            # newer than what it read: keep the value for this caller, read again next.
            self._loaded_at = now if generation == self._generation else None
        return self._value

    def invalidate(self) -> None:
        self._loaded_at = None
        self._generation += 1


class CachedReference(DependencyProvider):
    """One TimedReference per service container, shared by its workers."""

    def __init__(self, load: Callable[[Any], Any], ttl_s: float):
        self.load, self.ttl_s = load, ttl_s

    def setup(self) -> None:
        self.reference = TimedReference(self.load, self.ttl_s)

    def get_dependency(self, worker_ctx) -> TimedReference:
        return self.reference


# --- names people read, from the place's reference file ------------------------------
# Provisioning loads every service's categories and units from this file (it ships in the
# image), so each service can name what it holds by code without asking another service.
REFERENCE_FILE = Path(__file__).resolve().parent.parent / "reference" / "wangjiang.yaml"


@functools.cache
def _names() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    with REFERENCE_FILE.open(encoding="utf-8") as f:
        ref = yaml.safe_load(f)
    return ({c["code"]: (c["name_zh"], c["name_en"]) for c in ref["categories"]},
            {u["id"]: u["name_zh"] for u in ref["communities"] + ref["units"]})


def category_name(code: str | None) -> tuple[str, str] | None:
    """A category's (Chinese, English) name; its code twice if the file has none."""
    return None if code is None else _names()[0].get(code, (code, code))


def unit_name(unit_id: str | None) -> str | None:
    """A unit's or community's public Chinese name (始版桥社区), None if unknown."""
    return None if unit_id is None else _names()[1].get(unit_id)
