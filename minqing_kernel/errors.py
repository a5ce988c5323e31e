"""Problems: the one way a service reports an error a person can act on.

A Problem raised in a service crosses nameko RPC typed (it is registered with nameko's
remote-error registry under its own path) and the gateway turns it into an RFC 9457
problem+json response. Every problem carries a stable code, its HTTP status and a
message in Chinese and English.
"""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError
from nameko.exceptions import registry

from minqing_kernel import messages


class Problem(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, detail_en: str, detail_zh: str, errors: Any = None,
                 code: str | None = None):
        # The args are what nameko serialises across RPC, so keep them JSON-safe.
        super().__init__(detail_en, detail_zh, errors or [], code or self.code)
        self.detail_en = detail_en
        self.detail_zh = detail_zh
        self.errors = errors or []
        self.code = code or self.code

    @classmethod
    def of(cls, key: str, /, *, errors: Any = None, code: str | None = None, **params):
        """The problem whose detail is the catalogue's message `key` (contracts/messages.yaml)
        rendered with `params`: the one way to build one (minqing_kernel/messages.py)."""
        said = messages.say(key, **params)
        return cls(said.en, said.zh, errors=errors, code=code)

    def to_problem(self, instance: str | None = None) -> dict:
        body = {
            "type": f"/problems/{self.code}",
            "title": title(self.status).en,
            "title_zh": title(self.status).zh,
            "status": self.status,
            "detail": self.detail_en,
            "detail_zh": self.detail_zh,
        }
        if self.errors:
            body["errors"] = self.errors
        if instance:
            body["instance"] = instance
        return body


class Invalid(Problem):
    status = 422
    code = "invalid"


class BadRequest(Problem):
    status = 400
    code = "bad-request"


class Unauthorized(Problem):
    status = 401
    code = "unauthorized"


class Forbidden(Problem):
    status = 403
    code = "forbidden"


class NotFound(Problem):
    status = 404
    code = "not-found"


class Conflict(Problem):
    status = 409
    code = "conflict"


class TooLarge(Problem):
    status = 413
    code = "too-large"


class TooManyRequests(Problem):
    """429: come back in `retry_after_s` seconds (the body says so, as a Retry-After
    header would; the gateway sends the header too)."""
    status = 429
    code = "too-many-requests"

    def __init__(self, detail_en: str, detail_zh: str, errors: Any = None,
                 code: str | None = None, retry_after_s: int | None = None):
        super().__init__(detail_en, detail_zh, errors, code)
        # (it arrives as text: nameko sends non-string arguments as their str())
        self.retry_after_s = int(retry_after_s) if retry_after_s is not None else None
        # nameko rebuilds a remote exception from its args: keep the wait among them.
        self.args = (*self.args, self.retry_after_s)

    @classmethod
    def of(cls, key: str, /, *, errors: Any = None, code: str | None = None,
           retry_after_s: int | None = None, **params):
        said = messages.say(key, **params)
        return cls(said.en, said.zh, errors=errors, code=code, retry_after_s=retry_after_s)

    def to_problem(self, instance: str | None = None) -> dict:
        body = super().to_problem(instance)
        if self.retry_after_s is not None:
            body["retry_after_s"] = self.retry_after_s
        return body


class Unavailable(Problem):
    status = 503
    code = "unavailable"


def title(status: int) -> messages.Said:
    """A problem's title by its HTTP status, from the catalogue (`title.<status>`)."""
    key = f"title.{status}"
    return messages.say(key if key in messages.catalogue() else "title.other")


def field_errors(messages_: dict) -> list[dict]:
    """Flatten marshmallow's nested messages into [{field, message, message_zh}] for
    problem bodies: marshmallow's English, and its Chinese from the catalogue."""
    out: list[dict] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                if isinstance(key, int):  # marshmallow keys list items by their index
                    walk(f"{prefix}[{key}]", sub)
                else:
                    walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list) and value and not all(isinstance(v, str) for v in value):
            for i, sub in enumerate(value):
                walk(f"{prefix}[{i}]", sub)
        else:
            for message in value if isinstance(value, list) else [value]:
                said = messages.field_message(str(message))
                out.append({"field": prefix, "message": said.en, "message_zh": said.zh})

    walk("", messages_)
    return out


def invalid_from_marshmallow(err, what: str = "request") -> Invalid:
    """422 naming each field that is wrong and why: in English by the field's name, in
    Chinese by its Chinese name and the Chinese message (no English in `detail_zh`).
    `what` is the thing's noun in the catalogue (`noun.<what>`: "report" → 爆料)."""
    errors = field_errors(err.messages)
    fields = sorted({e["field"] for e in errors})
    first_zh = {}
    for e in errors:
        first_zh.setdefault(e["field"], e["message_zh"])
    problems_zh = "；".join(f"{messages.field_label(f)}：{first_zh[f].rstrip('。')}"
                           for f in fields)
    noun = messages.say(f"noun.{what}")
    return Invalid.of("invalid-fields", what_en=noun.en, what_zh=noun.zh,
                      fields=", ".join(fields), problems_zh=problems_zh, errors=errors)


def validated(schema, payload: Any, what: str) -> dict:
    """Load `payload` with a marshmallow schema, or raise the Invalid problem saying why.
    `what` names the thing for the person reading the error: a `noun.*` key of the
    catalogue ("report" → report, 爆料)."""
    try:
        return schema.load(payload if payload is not None else {})
    except ValidationError as err:
        raise invalid_from_marshmallow(err, what) from None


for _cls in (Problem, Invalid, BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
             TooLarge, TooManyRequests, Unavailable):
    registry[f"{__name__}.{_cls.__name__}"] = _cls
