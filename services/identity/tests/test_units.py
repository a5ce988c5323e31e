"""Units and grids managed by admins, and the events that carry them and a deletion:
unit tests, no servers (tests/e2e/test_units_admin.py and test_account_erasure.py run
them against the real stack)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from minqing_kernel import events as ev
from minqing_kernel.errors import Invalid, validated
from services.identity import schemas, units


def unit_row(**changes):
    base = dict(id="dept-chengguan", kind="department", name_zh="城管科",
                name_en="Urban Management", leader_id=None, version=3, community_id=None)
    return SimpleNamespace(**{**base, **changes})


@pytest.mark.parametrize("kind", ["community", "ministry", None])
def test_a_new_unit_is_a_department_organisation_team_or_platform(kind):
    with pytest.raises(Invalid):
        validated(schemas.NewUnit(), {"id": "dept-x", "kind": kind, "name_zh": "科",
                                      "name_en": "Office"}, "unit")


@pytest.mark.parametrize("unit_id", ["Dept", "1dept", "d", "dept x", "dept/../x"])
def test_a_unit_id_is_lowercase_letters_digits_and_dashes(unit_id):
    with pytest.raises(Invalid):
        validated(schemas.NewUnit(), {"id": unit_id, "kind": "department", "name_zh": "科",
                                      "name_en": "Office"}, "unit")


def test_a_unit_change_takes_only_names_and_leader():
    with pytest.raises(Invalid):
        validated(schemas.UnitChange(), {"kind": "community"}, "unit-change")
    assert validated(schemas.UnitChange(), {"leader_id": None},
                     "unit-change") == {"leader_id": None}


def test_the_unit_and_grid_events_carry_the_whole_state_their_schemas_take():
    ev.validate_data(ev.event_type("unit.changed"), units._unit_event(unit_row()))
    ev.validate_data(ev.event_type("grid.changed"), units._grid_event(unit_row(
        id="grid-jinjiang-3", community_id="comm-jinjiang", leader_id="gridleader-x")))


@pytest.mark.parametrize("entity_verb", ["unit.changed", "grid.changed", "account.deleted"])
def test_identitys_events_are_internal_so_no_partner_reads_them(entity_verb):
    assert ev.exchange_for("identity", ev.event_type(entity_verb)) == "identity.internal"


def test_a_deletion_event_carries_a_random_pseudonym_and_nothing_else_of_the_person():
    type_ = ev.event_type("account.deleted")
    ev.validate_data(type_, {"user_id": "resident-zhang", "pseudonym": "deleted-" + "a" * 32,
                             "deleted_at": "2026-12-06T03:00:00+00:00"})
    with pytest.raises(ev.EventRejected):
        ev.validate_data(type_, {"user_id": "resident-zhang", "pseudonym": "deleted-" + "a" * 32,
                                 "deleted_at": "2026-12-06T03:00:00+00:00",
                                 "phone": "13800000001"})
