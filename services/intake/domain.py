"""Rules for what a report may be: plain functions, no I/O."""
from __future__ import annotations

import hashlib
import hmac
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from shapely.geometry import Point, shape
from shapely.prepared import prep

from minqing_kernel import messages
from minqing_kernel.errors import Conflict, Forbidden, Invalid, TooLarge

MB = 1024 * 1024

# What a phone may upload, and how much. Photos are what most reports carry; short
# videos and voice notes are allowed but capped so a cheap phone on 4G can send them.
MEDIA = {
    "image/jpeg": ("photo", "jpg", 10 * MB),
    "image/png": ("photo", "png", 10 * MB),
    "image/webp": ("photo", "webp", 10 * MB),
    "image/heic": ("photo", "heic", 10 * MB),
    "video/mp4": ("video", "mp4", 100 * MB),
    "video/quicktime": ("video", "mov", 100 * MB),
    "audio/mp4": ("voice", "m4a", 10 * MB),
    "audio/mpeg": ("voice", "mp3", 10 * MB),
    "audio/aac": ("voice", "aac", 10 * MB),
    "audio/amr": ("voice", "amr", 10 * MB),
}

# The first bytes of each type, so a text file renamed .jpg is refused at submission.
MAGIC = {
    "image/jpeg": [(0, b"\xff\xd8\xff")],
    "image/png": [(0, b"\x89PNG\r\n\x1a\n")],
    "image/webp": [(8, b"WEBP")],
    "image/heic": [(4, b"ftyp")],
    "video/mp4": [(4, b"ftyp")],
    "video/quicktime": [(4, b"ftyp"), (4, b"moov"), (4, b"wide"), (4, b"mdat")],
    "audio/mp4": [(4, b"ftyp")],
    "audio/mpeg": [(0, b"ID3"), (0, b"\xff\xfb"), (0, b"\xff\xf3"), (0, b"\xff\xf2")],
    "audio/aac": [(0, b"\xff\xf1"), (0, b"\xff\xf9")],
    "audio/amr": [(0, b"#!AMR")],
}

KIND_ZH = {k: messages.name("media-kind", k) for k in ("photo", "video", "voice")}
MAX_ATTACHMENTS = 9
# Who reads every report: the command center and the discipline committee (纪工委). A
# leader reads only the reports whose case is in a unit they lead, which dispatch knows
# (LEADER_SCOPED: intake asks dispatch, see handlers.get_report).
STAFF_READERS = frozenset({"operator", "admin", "discipline"})
LEADER_SCOPED = "leader"
# A partner platform (role `partner`) submits through the gateway's Open311 server
# (`open311`, the default) or over RabbitMQ (`partner`).
CHANNELS_FOR_ROLE = {"resident": ("app",), "operator": ("phone",),
                     "patroller": ("patrol", "app"), "partner": ("open311", "partner")}
# Without a channel asked for, the first one a user's roles allow: a 红袖章 volunteer (also
# a resident) reports as a patroller, since that is why the role was given to them
# (issue #12, point 8); an operator who is also a resident reports from the app, because a
# phone report needs the caller's number, which only a call gives.
DEFAULT_CHANNELS = ("patrol", "app", "open311", "partner", "phone")

# Partner platforms (another district's platform, 平安365) hand us reports over RabbitMQ.
# Each has its own broker user `partner-<name>`, made by tools/partners.py; that user is
# also the partner's identity here (reporter and submitter of its reports), because the
# broker vouches for it: a message's user_id must be the publishing connection's user.
INBOUND_EXCHANGE = "partners.inbound"
REJECTIONS_EXCHANGE = "partners.rejections"  # routing key = the partner's name
PARTNER_USER_PREFIX = "partner-"
PARTNER_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# uuid5(NAMESPACE_URL, "https://minqing.cn/partners"), published in the contract so that a
# partner can compute the id of the report its event made.
PARTNER_REPORTS_NAMESPACE = uuid.UUID("55441305-8d63-59e2-b399-fdf46188ca28")


def media_rule(content_type: str, size: int) -> tuple[str, str, int]:
    """(kind, extension, limit) for an allowed upload, or a problem saying why not."""
    rule = MEDIA.get(content_type)
    if rule is None:
        allowed = ", ".join(sorted(MEDIA))
        raise Invalid.of("intake.attachment-type-not-allowed", content_type=content_type,
                         allowed=allowed, code="attachment-type-not-allowed")
    if size > rule[2]:
        raise TooLarge.of("intake.attachment-too-large", kind=rule[0], kind_zh=KIND_ZH[rule[0]],
                          max_mb=rule[2] // MB, mb=size / MB,
                          code="attachment-too-large")
    return rule


# Object keys say nothing about who uploaded (issue #10, finding 1): a key reaches handlers,
# volunteers and 平安365, so it is random; who owns an upload is a row in intake.uploads.
# What a phone writes (an upload) and what a report points at (an attachment) are two
# objects: a presigned POST stays valid for its whole life, so a second write through the
# same ticket would otherwise change a photo the command center has already accepted. On
# acceptance intake copies the upload to an attachment key that no ticket can write.
UPLOAD_PREFIX = "uploads/"
ATTACHMENT_PREFIX = "attachments/"
UPLOAD_KEY = re.compile(r"^uploads/[0-9a-f]{32}\.[a-z0-9]{2,5}$")


def upload_key(content_type: str) -> str:
    """Where a phone may write one upload: random, nothing derived from the uploader."""
    return f"{UPLOAD_PREFIX}{uuid.uuid4().hex}.{MEDIA[content_type][1]}"


def attachment_key(content_type: str) -> str:
    """Where an accepted attachment lives: random too, and never handed to a ticket."""
    return f"{ATTACHMENT_PREFIX}{uuid.uuid4().hex}.{MEDIA[content_type][1]}"


@dataclass(frozen=True)
class Upload:
    """What intake issued a ticket for: the key, to whom, and what was declared."""
    key: str
    owner_id: str
    content_type: str
    size: int


def magic_matches(content_type: str, head: bytes) -> bool:
    return any(head[offset:offset + len(sig)] == sig for offset, sig in MAGIC[content_type])


@dataclass(frozen=True)
class Attachment:
    key: str
    content_type: str
    size: int


def not_yours(key: str) -> Forbidden:
    return Forbidden.of("intake.attachment-not-yours", key=key, code="attachment-not-yours")


def check_upload_owner(owner_id: str, key: str, upload: Upload | None) -> Upload:
    """The upload behind `key`, if intake issued it to `owner_id`. An unknown key and
    somebody else's are answered alike, so a key cannot be probed for whose it is."""
    if upload is None or upload.owner_id != owner_id:
        raise not_yours(key)
    return upload


def check_single_use(key: str, used_for: str | None, use: str) -> None:
    """An upload is attached once: to one report, or one case action. The same use again
    (a resent submission) is not a second use."""
    if used_for is not None and used_for != use:
        raise already_used(key)


def already_used(key: str) -> Conflict:
    return Conflict.of("intake.attachment-already-used", key=key,
                       code="attachment-already-used")


def missing(key: str) -> Invalid:
    return Invalid.of("intake.attachment-missing", key=key, code="attachment-missing")


def check_attachment(upload: Upload, key: str, stat, head: bytes | None) -> Attachment:
    """The accepted copy at `key` of `upload`: stat is its metadata (None if absent), head
    its first bytes. It must be what the ticket declared, whatever the store enforced:
    the same content type, no larger than declared, and bytes that are that type."""
    if stat is None:
        raise missing(upload.key)
    content_type = (stat.content_type or "").split(";")[0].strip().lower()
    if content_type != upload.content_type:
        raise Invalid.of("intake.attachment-wrong-type", key=upload.key,
                         content_type=upload.content_type,
                         stored=content_type or messages.en("intake.no-type"),
                         stored_zh=content_type or messages.zh("intake.no-type"),
                         code="attachment-wrong-type")
    if stat.size > upload.size:
        raise TooLarge.of("intake.attachment-larger-than-declared", key=upload.key, size=stat.size,
                          size2=upload.size, code="attachment-too-large")
    media_rule(content_type, stat.size)
    if head is None or not magic_matches(content_type, head):
        raise Invalid.of("intake.attachment-content-mismatch", key=upload.key,
                         content_type=content_type, code="attachment-wrong-type")
    return Attachment(key, content_type, stat.size)


class ServiceArea:
    """The subdistrict's boundary, prepared once for fast point-in-polygon tests."""

    def __init__(self, geojson: dict):
        self._shape = prep(shape(geojson))

    def contains(self, lat: float, lon: float) -> bool:
        return self._shape.covers(Point(lon, lat))


def check_location(area: ServiceArea, lat: float, lon: float) -> None:
    if not area.contains(lat, lon):
        raise Invalid.of("intake.out-of-area", lat=lat, lon=lon, code="out-of-area")


def check_category(categories: dict, code: str) -> None:
    if code not in categories:
        raise Invalid.of("intake.unknown-category", category=code, code="unknown-category")


def channel_for(actor: dict, requested: str | None) -> str:
    """The channel follows from who submits: residents use the app, operators take phone
    calls, patrollers report from patrol (DEFAULT_CHANNELS) and may still say `app` when
    they report as any resident would; nobody claims a channel their roles do not give."""
    allowed = {c for r in actor["roles"] for c in CHANNELS_FOR_ROLE.get(r, ())}
    if not allowed:
        raise Forbidden.of("intake.role-cannot-report")
    if requested is None:
        return next(c for c in DEFAULT_CHANNELS if c in allowed)
    if requested not in allowed:
        raise Forbidden.of("intake.channel-not-allowed", requested=requested,
                           requested_zh=messages.name("channel", requested),
                           code="channel-not-allowed")
    return requested


def caller_id(phone: str, key: bytes) -> str:
    """A phone caller has no account; their reports share an id that does not reveal the
    number to anyone who sees the id (the number itself stays in intake).

    A keyed HMAC, not a plain hash: China's mobile numbers are 11 digits with a handful of
    known prefixes, so any unkeyed hash of one is reversed by trying them all (finding 3
    of issue #10: 0.6 s). Without the key (CALLER_ID_KEY, per installation) the id says
    nothing; 128 bits of it keep distinct callers apart."""
    digest = hmac.new(key, f"minqing-caller:{phone}".encode(), hashlib.sha256).hexdigest()
    return "caller-" + digest[:32]


def can_read_report(actor: dict, reporter_id: str, submitted_by: str,
                    case_led: bool = False) -> bool:
    """case_led: dispatch says the report's case is in a unit `actor` leads."""
    if STAFF_READERS & set(actor["roles"]):
        return True
    if actor["id"] in (reporter_id, submitted_by):
        return True
    return case_led and is_scoped_leader(actor)


def sees_reporter(actor: dict, reporter_id: str) -> bool:
    """Whether `actor` may know who reported: the command center and oversight, and the
    reporter herself. A leader reads her units' reports without the name (dispatch's
    visible_reporters says why)."""
    return bool(STAFF_READERS & set(actor["roles"])) or actor["id"] == reporter_id


def is_scoped_leader(actor: dict) -> bool:
    """A leader who is not also a reader of every report: dispatch must be asked."""
    roles = set(actor["roles"])
    return LEADER_SCOPED in roles and not STAFF_READERS & roles


def partner_name(user_id: str | None) -> str | None:
    """The partner a broker user is, or None if it is not a partner's user."""
    if not user_id or not user_id.startswith(PARTNER_USER_PREFIX):
        return None
    name = user_id[len(PARTNER_USER_PREFIX):]
    return name if PARTNER_NAME.match(name) else None


def partner_actor(user_id: str | None) -> dict:
    """Who submits a partner's report: the partner itself, taken from the message's
    broker-validated user_id; a message without one is not accepted from anyone."""
    if partner_name(user_id) is None:
        raise Forbidden.of("intake.unknown-partner", exchange=INBOUND_EXCHANGE,
                           user_id=user_id, code="unknown-partner")
    return {"id": user_id, "roles": ["partner"]}


def partner_report_id(user_id: str, event_id: str) -> str:
    """One report per (partner, event id): a repeat of the event finds the same report,
    and two partners using the same event id do not collide."""
    return str(uuid.uuid5(PARTNER_REPORTS_NAMESPACE, f"{user_id}:{event_id}"))


# --- Open311 attributes ------------------------------------------------------------------
# A category may ask extra questions (reference/wangjiang.yaml, category_attributes), in
# Open311's service-definition terms. The answers are checked here and kept with the report.
ATTRIBUTE_TEXT_MAX = {"string": 200, "text": 2000}
# Channels whose clients read the service definitions, so a required question binds them.
# The app does not ask these questions yet: its reports are not refused for lacking them.
READS_DEFINITIONS = frozenset({"open311"})


def _bad_attribute(code: str, why: str, **params) -> Invalid:
    """422 for an answer to a category's question; `why` is an `intake.attribute-*` key."""
    said = messages.say(f"intake.attribute-{why}", **params)
    return Invalid.of("intake.bad-attribute", attribute=code, why_en=said.en, why_zh=said.zh,
                      errors=[{"field": f"attributes.{code}", "message": said.en,
                               "message_zh": said.zh}], code="bad-attribute")


def _check_answer(definition: dict, value) -> str | list[str]:
    code, datatype = definition["code"], definition["datatype"]
    keys = [str(v["key"]) for v in definition.get("values") or []]
    if datatype == "multivaluelist":
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v in keys for v in values):
            raise _bad_attribute(code, "one-of", keys=", ".join(keys), keys_zh="、".join(keys))
        return list(dict.fromkeys(values))
    if not isinstance(value, str):
        raise _bad_attribute(code, "one-value")
    if datatype == "singlevaluelist" and value not in keys:
        raise _bad_attribute(code, "single-one-of", keys=", ".join(keys),
                             keys_zh="、".join(keys))
    if datatype == "number":
        try:
            if not math.isfinite(float(value)):
                raise ValueError(value)
        except ValueError:
            raise _bad_attribute(code, "number") from None
    if datatype == "datetime":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise _bad_attribute(code, "datetime") from None
    limit = ATTRIBUTE_TEXT_MAX.get(datatype, 200)
    if len(value) > limit or (datatype == "string" and "\n" in value):
        raise _bad_attribute(code, "one-line" if datatype == "string" else "too-long",
                             limit=limit)
    return value


def check_attributes(definitions: list[dict], answers: dict | None,
                     enforce_required: bool = True) -> dict | None:
    """The answers, checked against the category's definitions: each of its datatype, no
    unknown ones, and (if `enforce_required`) the required ones present. None when
    nothing was answered."""
    answers = answers or {}
    by_code = {d["code"]: d for d in definitions}
    unknown = sorted(set(answers) - set(by_code))
    if unknown:
        raise _bad_attribute(unknown[0], "unknown")
    checked = {}
    for code, definition in by_code.items():
        value = answers.get(code)
        if value in (None, "", []):
            if definition.get("required") and enforce_required:
                raise _bad_attribute(code, "required")
            continue
        checked[code] = _check_answer(definition, value)
    return checked or None
