"""The gateway's limits on how fast: reports per user (the limiter is the kernel's, see
minqing_kernel/ratelimit.py); sign-ins are in gateway/signin.py."""
from __future__ import annotations

import math

from minqing_kernel import messages
from minqing_kernel.errors import TooManyRequests
from minqing_kernel.ratelimit import RateLimit


def too_many(what: str, wait_s: float, code: str) -> TooManyRequests:
    """429 for something done too often, saying when to try again (whole seconds, at
    least one, also in Retry-After). `what` is a `too-often.*` key of the catalogue."""
    seconds = max(1, math.ceil(wait_s))
    what_en, what_zh = messages.say(f"too-often.{what}")[1:]
    return TooManyRequests.of("gateway.too-many", what_en=what_en, what_zh=what_zh,
                              seconds=seconds, code=code, retry_after_s=seconds)


def too_many_reports(wait_s: float) -> TooManyRequests:
    return too_many("reports", wait_s, code="rate-limited")


def ReportRateLimit() -> RateLimit:  # noqa: N802 (reads like the provider it returns)
    """Reports per user, from REPORT_RATE_PER_MIN and REPORT_BURST (gateway/config.yaml)."""
    return RateLimit("REPORT_RATE_PER_MIN", "REPORT_BURST", 30, 10)


def too_many_uploads(wait_s: float) -> TooManyRequests:
    return too_many("uploads", wait_s, code="rate-limited")


def UploadRateLimit() -> RateLimit:  # noqa: N802 (reads like the provider it returns)
    """Upload tickets per user, from UPLOAD_RATE_PER_MIN and UPLOAD_BURST.

    Its own bucket, apart from reports': a report carries up to 9 attachments, so a
    resident photographing one problem needs a burst of uploads, not of reports; and each
    ticket costs a row and a signature, which an unthrottled script could pile up."""
    return RateLimit("UPLOAD_RATE_PER_MIN", "UPLOAD_BURST", 60, 20)
