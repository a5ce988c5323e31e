"""Which attachment a media URL of a case points at, for whoever may see the case
(minqing_kernel/media.py says why a URL checked at each fetch): the report's photos, the
handler's result photos and any photo on the trail; and a wish's, for the volunteers who
see it on the board."""
from __future__ import annotations

import sqlalchemy as sa

from minqing_kernel.errors import Forbidden, NotFound
from minqing_kernel.media import find_key
from minqing_kernel.reference import TimedReference
from services.dispatch import domain, models
from services.dispatch.case_views import visible_case
from services.dispatch.repository import case_id_or_404


def case_media_key(uow, reference: TimedReference, actor: dict, case_id: str,
                   name: str) -> str:
    """The object key behind /v1/cases/{case_id}/media/{name}; refused as the case is."""
    case = visible_case(uow, reference, actor, case_id)
    t = models.case_trail
    on_trail = uow.session.execute(sa.select(t.c.attachments).where(
        t.c.case_id == case.id, t.c.attachments != sa.text("'[]'::jsonb"))).scalars().all()
    key = find_key(name, case.attachments, case.result_attachments, *on_trail)
    if key is None:
        raise NotFound.of("dispatch.case-attachment-not-found", name=name)
    return key


def wish_media_key(uow, actor: dict, case_id: str, name: str) -> str:
    """The key behind /v1/wishes/{case_id}/media/{name}: a photo of a wish on the board
    (what any volunteer may see there), or of one the caller claimed, after it left it."""
    c = models.cases
    row = uow.session.execute(sa.select(c.c.status, c.c.wish_claimed_by, c.c.attachments)
                              .where(c.c.id == case_id_or_404(case_id))).first()
    if row is None:
        raise NotFound.of("dispatch.wish-not-found", case_id=case_id)
    if row.status != domain.WISH and row.wish_claimed_by != actor["id"] \
            and not set(actor["roles"]) & domain.SEE_ALL:
        raise Forbidden.of("dispatch.not-a-wish-on-the-board")
    key = find_key(name, row.attachments)
    if key is None:
        raise NotFound.of("dispatch.wish-attachment-not-found", name=name)
    return key
