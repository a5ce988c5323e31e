"""Which attachment a media URL of a case points at, for whoever may see the case
(minqing_kernel/media.py says why a URL checked at each fetch): the report's photos, the
handler's result photos and any photo on the trail."""
from __future__ import annotations

import sqlalchemy as sa

from minqing_kernel.errors import NotFound
from minqing_kernel.media import find_key
from minqing_kernel.reference import TimedReference
from services.dispatch import models
from services.dispatch.case_views import visible_case


def case_media_key(uow, reference: TimedReference, actor: dict, case_id: str,
                   name: str) -> str:
    """The object key behind /v1/cases/{case_id}/media/{name}; refused as the case is."""
    case = visible_case(uow, reference, actor, case_id)
    t = models.case_trail
    on_trail = uow.session.execute(sa.select(t.c.attachments).where(
        t.c.case_id == case.id, t.c.attachments != sa.text("'[]'::jsonb"))).scalars().all()
    key = find_key(name, case.attachments, case.result_attachments, *on_trail)
    if key is None:
        raise NotFound(f"No attachment {name} on this case.", f"该案卷没有附件 {name}。")
    return key
