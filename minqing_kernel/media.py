"""How a client reaches an attachment (a photo, a video, a voice note) it may see.

Decision (issue #12, point 1). Every attachment in a report, a case or a timeline entry
carries `url`: a path of the gateway, `/v1/reports/{id}/media/{name}` or
`/v1/cases/{id}/media/{name}` (`/v1/wishes/{id}/media/{name}` on the volunteers' board),
never the object store's address. Fetching it with the
bearer token makes the service that owns the report or case decide, exactly as for the
report or case itself (a resident only her own; a handler her unit's cases; a leader those
of the units she leads; the command center all), and answers with a redirect to a
presigned GET that lives `MEDIA_URL_TTL_S` (5 minutes). So:
- a link in a view is not itself a credential: a view copied into a chat, a log or a
  screenshot opens nothing without the reader's own token;
- access is checked when the photo is fetched, not when the view was made, so a handler
  moved to another unit loses her old cases' photos with her next request;
- the bytes go from the store to the phone directly (the gateway never carries them);
- the object key and the store's address stay out of every view the apps render;
- `name` is the key's last segment (random for every key made since issue #10), so the
  path names no one. (FixMyStreet publishes photos of public reports; ours are private
  reports, hence the check.)
Open311, which is public, gets something else: see services/intake/media.py.
"""
from __future__ import annotations

from collections.abc import Iterable

MEDIA_PREFIX = "/v1"


def media_name(key: str) -> str:
    """The part of an object key a media URL carries (its last segment)."""
    return key.rsplit("/", 1)[-1]


def linked(attachments: Iterable[dict] | None, owner: str, owner_id: str) -> list[dict] | None:
    """The attachments with the URL a client fetches each through: owner is `reports`,
    `cases` or `wishes`."""
    if attachments is None:
        return None
    return [{**a, "url": f"{MEDIA_PREFIX}/{owner}/{owner_id}/media/{media_name(a['key'])}"}
            for a in attachments]


def find_key(name: str, *attachment_lists: Iterable[dict] | None) -> str | None:
    """The key, among these attachments, whose URL carries `name`."""
    for attachments in attachment_lists:
        for a in attachments or ():
            if media_name(a["key"]) == name:
                return a["key"]
    return None
