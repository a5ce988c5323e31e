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

    def to_problem(self, instance: str | None = None) -> dict:
        body = {
            "type": f"/problems/{self.code}",
            "title": TITLES.get(self.status, ("Error", "错误"))[0],
            "title_zh": TITLES.get(self.status, ("Error", "错误"))[1],
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

    def to_problem(self, instance: str | None = None) -> dict:
        body = super().to_problem(instance)
        if self.retry_after_s is not None:
            body["retry_after_s"] = self.retry_after_s
        return body


class Unavailable(Problem):
    status = 503
    code = "unavailable"


TITLES = {
    400: ("Bad request", "请求有误"),
    401: ("Not signed in", "未登录或登录已失效"),
    403: ("Not allowed", "无权操作"),
    404: ("Not found", "未找到"),
    405: ("Method not allowed", "不支持该操作方式"),
    409: ("Not possible now", "当前状态不允许该操作"),
    413: ("Too large", "内容过大"),
    415: ("Unsupported media type", "不支持的内容类型"),
    422: ("Invalid input", "输入内容有误"),
    429: ("Too many requests", "请求过于频繁"),
    500: ("Internal error", "系统内部错误"),
    503: ("Service unavailable", "服务暂不可用"),
}


def field_errors(messages: dict) -> list[dict]:
    """Flatten marshmallow's nested messages into [{field, message}] for problem bodies."""
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
                out.append({"field": prefix, "message": str(message)})

    walk("", messages)
    return out


def invalid_from_marshmallow(err, what_en: str = "request", what_zh: str = "请求") -> Invalid:
    errors = field_errors(err.messages)
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return Invalid(f"The {what_en} has invalid fields: {fields}.",
                   f"{what_zh}中以下字段有误：{fields}。", errors=errors)


def validated(schema, payload: Any, what_en: str, what_zh: str) -> dict:
    """Load `payload` with a marshmallow schema, or raise the Invalid problem saying why.
    `what_*` names the thing for the person reading the error ("report", "爆料")."""
    try:
        return schema.load(payload if payload is not None else {})
    except ValidationError as err:
        raise invalid_from_marshmallow(err, what_en, what_zh) from None


for _cls in (Problem, Invalid, BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
             TooLarge, TooManyRequests, Unavailable):
    registry[f"{__name__}.{_cls.__name__}"] = _cls
