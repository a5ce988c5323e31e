"""Ids from outside (a path, a payload): one way to read them."""
from __future__ import annotations

import uuid

from minqing_kernel import messages
from minqing_kernel.errors import NotFound


def uuid_or_none(value) -> str | None:
    """`value` as a canonical UUID string, or None when it is not one."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


def uuid_or_404(value, what: str) -> str:
    """`value` as a canonical UUID string; a value that is not one names nothing we hold,
    so it is a 404 like an id that is well formed but unknown (not a 400 that would tell
    a prober which ids are well formed)."""
    parsed = uuid_or_none(value)
    if parsed is None:
        noun = messages.say(f"noun.{what}")  # what it is, by its catalogue key: "case"
        raise NotFound.of("kernel.not-found", what_en=noun.en, value=value, what_zh=noun.zh)
    return parsed
