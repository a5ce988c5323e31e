"""The trail (留痕): a case's timeline as its reader may see it, and the check that the
hash chain is whole and ends where the case says it does."""
from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa

from minqing_kernel import messages
from minqing_kernel.errors import NotFound
from minqing_kernel.media import linked
from minqing_kernel.reference import TimedReference
from services.dispatch import domain, models, schemas
from services.dispatch.case_views import visible_case
from services.dispatch.repository import case_id_or_404


def timeline(uow, reference: TimedReference, actor: dict, case_id: str) -> dict:
    row = visible_case(uow, reference, actor, case_id)
    entries = uow.session.execute(sa.select(models.case_trail).where(
        models.case_trail.c.case_id == row.id).order_by(models.case_trail.c.seq)).all()
    shown = schemas.TrailEntryView(many=True).dump(entries)
    visible = set(domain.visible_reporters(actor, row.reporter_ids))
    comments = domain.may_read_rating_comment(actor, row.reporter_ids)
    units = reference.fresh(uow.session).units
    staff = bool(set(actor["roles"]) & domain.STAFF_VIEWERS)
    for entry in shown:
        entry["attachments"] = linked(entry["attachments"] or [], "cases", row.id)
        named(entry, units, staff)
        # A reporter's rating is in the trail under her id, with her comment as its note:
        # both hidden as in the case view (the stored entry stays whole: it is hashed).
        if entry["actor_role"] == domain.REPORTER:
            if entry["actor_id"] not in visible:
                entry["actor_id"] = None
        # Her words, whoever recorded them (an operator, for a phone caller).
        if entry["action"] in domain.REPORTER_ACTIONS and not comments:
            entry["note"] = None
    return {"case_id": row.id, "status": row.status, "entries": shown}


def named(entry: dict, units: dict, staff: bool) -> None:
    """Who did a step as people read it: the unit's public name and the role in Chinese
    (石板桥社区 · 处置人员). A resident sees only that: no staff id, no staff name (a
    reporter's own id stays, for her to know her own steps)."""
    unit = units.get(entry["unit_id"]) if entry.get("unit_id") else None
    entry["unit_name"] = unit.name_zh if unit is not None else None
    entry["actor_role_name"] = messages.name("role", entry["actor_role"])
    entry["actor_shown_as"] = " · ".join(
        n for n in (entry["unit_name"] if entry["actor_role"] == "handler" else None,
                    entry["actor_role_name"]) if n)
    if not staff and entry["actor_role"] != domain.REPORTER:
        entry["actor_id"] = None


def verify_chain(uow, case_id: str) -> dict:
    """Recompute the chain; report the first entry whose hash does not follow."""
    entries = uow.session.execute(sa.select(models.case_trail).where(
        models.case_trail.c.case_id == case_id_or_404(case_id))
        .order_by(models.case_trail.c.seq)).mappings().all()
    prev = domain.GENESIS
    for e in entries:
        entry = {k: e[k] for k in ("case_id", "seq", "actor_id", "actor_role", "action",
                                   "from_status", "to_status", "unit_id", "note",
                                   "attachments")}
        entry["at"] = e["at"].astimezone(UTC).isoformat()
        if e["prev_hash"] != prev or domain.chain_hash(prev, entry) != e["hash"]:
            return {"case_id": case_id, "valid": False, "first_bad_seq": e["seq"],
                    "entries": len(entries)}
        prev = e["hash"]
    return {"case_id": case_id, "valid": True, "first_bad_seq": None, "entries": len(entries)}


def verify_case_trail(uow, case_id: str) -> dict:
    """verify_chain, plus the anchor on the case: the chain must end at the head and
    length the case recorded with each step, so rows rewritten with their hashes
    recomputed, or removed from the end, are caught too (reason 'head')."""
    case = uow.session.execute(sa.select(models.cases.c.id, models.cases.c.trail_head,
                                         models.cases.c.trail_length).where(
        models.cases.c.id == case_id_or_404(case_id))).first()
    if case is None:
        raise NotFound.of("dispatch.case-not-found", case_id=case_id)
    result = verify_chain(uow, case.id)
    if not result["valid"]:
        return {**result, "reason": "chain"}
    last = uow.session.execute(sa.select(models.case_trail.c.hash).where(
        models.case_trail.c.case_id == case.id).order_by(models.case_trail.c.seq.desc())
        .limit(1)).scalar()
    if result["entries"] != case.trail_length or last != case.trail_head:
        return {**result, "valid": False, "reason": "head",
                "first_bad_seq": min(result["entries"], case.trail_length) or 1}
    return {**result, "reason": None}
