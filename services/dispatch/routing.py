"""Routing (派单规则): the reference data a suggestion needs, and the rules admins edit."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.errors import Forbidden, Invalid, NotFound, validated
from minqing_kernel.reference import CachedReference, TimedReference
from services.dispatch import domain, models, schemas
from services.dispatch.metrics import ROUTING_RULE_CHANGES

log = logging.getLogger(__name__)
# Another dispatch process picks an admin's change up within this many seconds.
REFERENCE_TTL_S = 60.0


@dataclass
class ReferenceData:
    """Routing rules, community polygons, units and SLA hours, as last read."""
    router: domain.Router
    communities: set = field(default_factory=set)
    units: dict = field(default_factory=dict)
    sla: dict = field(default_factory=dict)
    led: dict = field(default_factory=dict)

    def led_by(self, actor: dict) -> frozenset:
        """What a leader leads: units (units.leader_id) and the community of a grid they
        lead (a grid leader oversees their grid's community)."""
        return self.led.get(actor["id"], frozenset()) if "leader" in actor["roles"] \
            else frozenset()


def load_reference(session) -> ReferenceData:
    communities = {r.id: r.boundary for r in session.execute(
        sa.select(models.communities)).all()}
    rules = [domain.Rule(r.category, r.community, r.unit_id, r.reason_zh, r.reason_en, r.id)
             for r in session.execute(sa.select(models.routing_rules)).all()]
    units = {r.id: r for r in session.execute(sa.select(models.units)).all()}
    led: dict[str, set] = {}
    for unit in units.values():
        if unit.leader_id:
            led.setdefault(unit.leader_id, set()).add(unit.id)
    for grid in session.execute(sa.select(models.grids)).all():
        if grid.leader_id:
            led.setdefault(grid.leader_id, set()).add(grid.community_id)
    return ReferenceData(
        router=domain.Router(communities, rules), communities=set(communities), units=units,
        sla={r.category: r for r in session.execute(sa.select(models.category_sla)).all()},
        led={leader: frozenset(units) for leader, units in led.items()})


def Reference() -> CachedReference:  # noqa: N802 (reads like the provider it returns)
    """dispatch's reference data, per process, reread at most once a minute and at once
    in this process after an admin changes a rule."""
    return CachedReference(load_reference, REFERENCE_TTL_S)


def require_admin(actor: dict) -> None:
    if "admin" not in actor["roles"]:
        raise Forbidden.of("dispatch.admin-required", code="role-required")


def _rule_view(row) -> dict:
    return {"id": row.id, "category": row.category, "community": row.community,
            "unit_id": row.unit_id, "reason_zh": row.reason_zh, "reason_en": row.reason_en}


def list_rules(uow) -> dict:
    r = models.routing_rules
    rows = uow.session.execute(sa.select(r).order_by(r.c.id)).all()
    return {"items": [_rule_view(row) for row in rows]}


def _check_rule(ref: ReferenceData, rule: dict) -> None:
    errors = []
    if rule["unit_id"] not in ref.units:
        errors.append({"field": "unit_id", "message": "unknown unit"})
    if rule["category"] != "*" and rule["category"] not in ref.sla:
        errors.append({"field": "category", "message": "unknown category"})
    if rule["community"] != "*" and rule["community"] not in ref.communities:
        errors.append({"field": "community", "message": "unknown community"})
    if errors:
        raise Invalid.of("routing.bad-rule", errors=errors, code="invalid-rule")


def put_rule(uow, reference: TimedReference, actor: dict, payload: dict) -> dict:
    """Create or replace the rule for a category x community (its natural key)."""
    require_admin(actor)
    rule = validated(schemas.RuleRequest(), payload, "routing-rule")
    _check_rule(reference.fresh(uow.session), rule)
    r = models.routing_rules
    stmt = pg.insert(r).values(**rule)
    row = uow.session.execute(stmt.on_conflict_do_update(
        index_elements=["category", "community"],
        set_={k: stmt.excluded[k] for k in ("unit_id", "reason_zh", "reason_en")})
        .returning(r)).first()
    _rules_changed(reference, actor, "put", _rule_view(row))
    return _rule_view(row)


def delete_rule(uow, reference: TimedReference, actor: dict, rule_id: str) -> dict:
    require_admin(actor)
    r = models.routing_rules
    row = None
    if str(rule_id).isdigit() and int(rule_id) < 2**31:
        row = uow.session.execute(sa.delete(r).where(r.c.id == int(rule_id))
                                  .returning(r)).first()
    if row is None:
        raise NotFound.of("dispatch.rule-not-found", rule_id=rule_id)
    _rules_changed(reference, actor, "delete", _rule_view(row))
    return _rule_view(row)


def _rules_changed(reference: TimedReference, actor: dict, change: str, rule: dict) -> None:
    # The router is rebuilt on its next use in this process; the service invalidates
    # again after the commit, in case a request in between reloaded the old rules.
    reference.invalidate()
    ROUTING_RULE_CHANGES.labels(change).inc()
    log.info("routing rule %s by %s: %s x %s -> %s", change, actor["id"], rule["category"],
             rule["community"], rule["unit_id"], extra={"rule_id": rule["id"]})
