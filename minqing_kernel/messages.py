"""The message catalogue: every text a person reads, in Chinese and English, by a stable key.

The texts live in one data file, `contracts/messages.yaml` (`key: {en: ..., zh: ...}`),
so a translator, a reviewer or the command center can read and correct all of them in
one place, and code names a message by its key: `say("case.not-found", case_id=...)`.
Templates are `str.format` templates (`{hours:g}`, `{unit_id!r}`); the parameters are
the same in both languages. Problems are built with `Problem.of(key, ...)`
(minqing_kernel.errors); names (roles, statuses, actions, fields) are `name(kind, code)`.

Field messages from marshmallow arrive as its English sentences (a validator formats its
own text); `field_message` finds the catalogue entry whose English template matches one
(`field-error.*`) and renders its Chinese with the same values, so a new validator needs
only a catalogue line, never code. `minqing_kernel/tests/test_message_catalogue.py` keeps
it honest: no Chinese text in the code outside the catalogue, every key used exists with
the parameters it is given, every marshmallow message has its Chinese.
"""
from __future__ import annotations

import functools
import re
import string
from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import yaml

CATALOGUE_PATH = Path(__file__).resolve().parent.parent / "contracts" / "messages.yaml"
BEIJING = ZoneInfo("Asia/Shanghai")
# Problem.of takes these as its own arguments, so no template may name a parameter so.
RESERVED_PARAMS = frozenset({"errors", "code", "retry_after_s"})


class Said(NamedTuple):
    """A rendered message: its key and its text in each language."""
    key: str
    en: str
    zh: str


@functools.cache
def catalogue() -> dict[str, dict[str, str]]:
    with CATALOGUE_PATH.open(encoding="utf-8") as f:
        entries = yaml.safe_load(f)
    for key, entry in entries.items():
        if not isinstance(entry, dict) or set(entry) != {"en", "zh"}:
            raise ValueError(f"{CATALOGUE_PATH}: {key} needs exactly en and zh")
    return entries


def params_of(template: str) -> set[str]:
    """The parameter names a template uses (`{name}`, `{name!r}`, `{name:g}`)."""
    return {field.split(".")[0].split("[")[0]
            for _, field, _, _ in string.Formatter().parse(template) if field}


def say(key: str, /, **params) -> Said:
    """The message `key` rendered with `params`, in English and Chinese. An unknown key
    is a programming error (KeyError), caught by the catalogue test before it ships."""
    entry = catalogue()[key]
    return Said(key, entry["en"].format(**params), entry["zh"].format(**params))


def zh(key: str, /, **params) -> str:
    return say(key, **params).zh


def en(key: str, /, **params) -> str:
    return say(key, **params).en


def name(kind: str, code: str | None, lang: str = "zh") -> str | None:
    """The name of a code of some kind (`role`, `status`, `action`, `field`, ...) in
    `lang`; the code itself when the catalogue has no name for it (data added later)."""
    if code is None:
        return None
    entry = catalogue().get(f"{kind}.{code}")
    return entry[lang] if entry else code


def names_zh(kind: str, codes) -> str:
    """Codes as a Chinese list: 居民、处置人员."""
    return "、".join(name(kind, c) for c in codes)


# --- time as people read it --------------------------------------------------------

def beijing(at: datetime | None, with_zone: bool = True) -> str | None:
    """A stored (UTC) time as people in Hangzhou read it: 2026-12-01 11:22（北京时间）."""
    if at is None:
        return None
    text = at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    return zh("time.beijing", time=text) if with_zone else text


# --- marshmallow's field messages -----------------------------------------------------

FIELD_ERROR_PREFIX = "field-error."
FIELD_ERROR_FALLBACK = "field-error-unknown"


@functools.cache
def _field_patterns() -> list[tuple[re.Pattern, str]]:
    """Each field-error entry's English template as a regex capturing its parameters,
    most specific (longest literal text) first."""
    patterns = []
    for key, entry in catalogue().items():
        if not key.startswith(FIELD_ERROR_PREFIX):
            continue
        regex, literal = "", 0
        for text, field, _, _ in string.Formatter().parse(entry["en"]):
            regex += re.escape(text)
            literal += len(text)
            if field:
                regex += f"(?P<{field}>.+?)"
        patterns.append((literal, re.compile(f"^{regex}$", re.DOTALL), key))
    return [(p, k) for _, p, k in sorted(patterns, key=lambda t: -t[0])]


def field_message(message: str) -> Said:
    """A marshmallow message (English, formatted) with its Chinese from the catalogue;
    one the catalogue does not know keeps its English and gets a general Chinese one."""
    for pattern, key in _field_patterns():
        found = pattern.match(message)
        if found:
            return Said(key, message, catalogue()[key]["zh"].format(**found.groupdict()))
    return Said(FIELD_ERROR_FALLBACK, message, zh(FIELD_ERROR_FALLBACK))


_INDEXED = re.compile(r"(.*?)((?:\[\d+\])*)", re.DOTALL)


def field_label(path: str) -> str:
    """A field's name for a Chinese sentence: `location.lat` → 位置的纬度; a list item
    `attachments[2]` → 附件（第 3 项）. Each part by `field.<name>`; a name the catalogue
    does not have (one the client made up, an attribute's code) is 其他内容, so no
    English word reaches a Chinese sentence (the catalogue test asks for every schema
    field). Any text is a path: a client chooses the names of unknown fields."""
    label = ""
    for part in path.split("."):
        bare, indexes = _INDEXED.fullmatch(part).groups()
        piece = ""
        if bare:
            known = catalogue().get(f"field.{bare}")
            piece = known["zh"] if known else zh("field.other")
        piece += "".join(zh("field.item", n=int(n) + 1) for n in re.findall(r"\d+", indexes))
        if piece:
            label = zh("field.path", outer=label, inner=piece) if label else piece
    return label or zh("field.other")
