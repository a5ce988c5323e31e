"""Attachments fetched: the presigned GET behind a media URL (minqing_kernel/media.py
says why a URL of the gateway, checked at each fetch), and Open311's media_url.

Open311's `media_url` (GeoReport v2: "a URL to media associated with the request"):
Open311 reads are public, so whatever is there is readable by anyone who lists requests.
Decision: the report's first *photo* only (never video or voice: a voice note is the
reporter's own voice), as a presigned GET that expires after
`OPEN311_MEDIA_URL_TTL_S` (1 hour) and is minted afresh on every read. A partner that
wants to keep the photo fetches it within the hour; nobody gets a permanent,
unauthenticated link to every photo, and the URL names no one (its key is random).
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from minqing_kernel.errors import NotFound
from minqing_kernel.media import find_key
from services.intake import handlers, models

MEDIA_URL_TTL_S = 300
OPEN311_MEDIA_URL_TTL_S = 3600


def no_such_media(name: str) -> NotFound:
    return NotFound.of("intake.attachment-not-found", name=name)


def signed(store, key: str, ttl_s: float) -> dict:
    """A presigned GET of `key` for ttl_s seconds (signed locally: no call to the store)."""
    return {"url": store.presigned_get(key, timedelta(seconds=ttl_s)),
            "expires_in": int(ttl_s)}


def report_media(uow, store, actor: dict, report_id: str, name: str,
                 cases_led: handlers.CasesLed, ttl_s: float) -> dict:
    """One of a report's attachments, for whoever may read the report (handlers.get_report
    decides, and refuses as it does)."""
    report = handlers.get_report(uow, actor, report_id, cases_led)
    key = find_key(name, report["attachments"])
    if key is None:
        raise no_such_media(name)
    return signed(store, key, ttl_s)


def attachment_link(uow, store, key: str, ttl_s: float) -> dict:
    """For the gateway, once dispatch has said the caller may see the case this key is
    attached to. Only keys intake accepted are signed: an attachment's copy, or a key a
    report from before attachment copies points at."""
    a, r = models.attachments, models.reports
    known = uow.session.execute(sa.select(a.c.key).where(a.c.key == key)).first() or \
        uow.session.execute(sa.select(r.c.id).where(
            r.c.attachments.contains([{"key": key}])).limit(1)).first()
    if known is None:
        raise no_such_media(key.rsplit("/", 1)[-1])
    return signed(store, key, ttl_s)


def with_open311_media(store, reports: list[dict], ttl_s: float) -> list[dict]:
    """Open311 rows with `media_url` (the first photo, expiring) instead of attachments."""
    for report in reports:
        photos = [a for a in report.pop("attachments", None) or ()
                  if a.get("content_type", "").startswith("image/")]
        report["media_url"] = signed(store, photos[0]["key"], ttl_s)["url"] if photos else None
    return reports
