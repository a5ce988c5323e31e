"""Issue #19: units and grids managed by admins. identity owns them and audits every
change; dispatch, which routes cases to units and shows leaders what they lead, learns of
each change from identity's internal unit.changed / grid.changed events, never from
identity's tables. Loading the reference file again never undoes an admin's change."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
import yaml
from sqlalchemy.orm import Session

from services.dispatch import refdata as dispatch_refdata
from services.dispatch import units as dispatch_units
from services.identity import refdata as identity_refdata
from tests.e2e.test_routes import IN_JINLONG, act, open_case
from tests.fixtures import ROOT, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(stack):
    return stack.client("admin")


@pytest.fixture
def operator(stack):
    return stack.client("operator-chen")


def patch(client, path: str, body: dict):
    return client.http.patch(client.base + path, json=body)


def new_unit(admin, **fields) -> dict:
    unit = {"id": f"dept-t-{uuid.uuid4().hex[:8]}", "kind": "department",
            "name_zh": "测试科室", "name_en": "Test Office", **fields}
    r = admin.post("/v1/admin/units", json=unit)
    assert r.status_code == 201, r.text
    return r.json()


def new_leader(stack, admin) -> tuple[str, object]:
    """A leader account of no unit, and a client signed in as it."""
    username = f"l-{uuid.uuid4().hex[:10]}"
    r = admin.post("/v1/admin/staff", json={"username": username, "display_name": "新网格长",
                                            "roles": ["leader"], "unit_id": None,
                                            "password": "leader-password"})
    assert r.status_code == 201, r.text
    leader = stack.client(None)
    signed = leader.http.post(f"{stack.gateway}/v1/auth/token",
                              json={"username": username, "password": "leader-password"})
    assert signed.status_code == 200, signed.text
    leader.user = signed.json()["user"]
    leader.http.headers["Authorization"] = f"Bearer {signed.json()['access_token']}"
    return leader.user["id"], leader


def dispatch_units_seen(operator) -> dict:
    r = operator.get("/v1/units")
    assert r.status_code == 200, r.text
    return {u["id"]: u for u in r.json()["items"]}


def test_a_unit_an_admin_creates_is_one_dispatch_assigns_cases_to(stack, admin, operator):
    # Given a unit an admin has just created
    unit = new_unit(admin)
    assert unit["version"] == 1 and unit["grids"] == []
    # When dispatch has had identity's event, then the operator sees it and assigns to it
    wait_for(lambda: unit["id"] in dispatch_units_seen(operator), what="dispatch's copy")
    _, case_id = open_case(stack, stack.client("resident-zhang"), category="hazard-facility",
                           location=IN_JINLONG, description="路灯不亮已有三天")
    assigned = act(operator, case_id, action="assign", unit_id=unit["id"])
    assert (assigned["unit_id"], assigned["unit_name"]) == (unit["id"], "测试科室")
    # and staff can be put in it (identity checks units against its own)
    r = admin.post("/v1/admin/staff", json={
        "username": f"h-{uuid.uuid4().hex[:10]}", "display_name": "科员", "roles": ["handler"],
        "unit_id": unit["id"], "password": "staff-password"})
    assert r.status_code == 201, r.text


def test_a_renamed_unit_reaches_dispatch_and_the_change_is_audited(stack, admin, operator):
    # Given a unit with a case assigned to it
    unit = new_unit(admin)
    wait_for(lambda: unit["id"] in dispatch_units_seen(operator), what="dispatch's copy")
    _, case_id = open_case(stack, stack.client("resident-zhang"), category="hazard-facility",
                           location=IN_JINLONG, description="井盖松动有响声")
    act(operator, case_id, action="assign", unit_id=unit["id"])
    # When an admin renames it
    r = patch(admin, f"/v1/admin/units/{unit['id']}", {"name_zh": "城市更新科"})
    assert r.status_code == 200, r.text
    assert (r.json()["name_zh"], r.json()["version"]) == ("城市更新科", 2)
    # then the name staff read from dispatch follows
    wait_for(lambda: dispatch_units_seen(operator).get(unit["id"], {}).get("name_zh")
             == "城市更新科", what="the new name in dispatch")
    # and the case names its unit by the new name (dispatch's copy, not the reference file)
    assert operator.get(f"/v1/cases/{case_id}").json()["unit_name"] == "城市更新科"
    # and who changed what, when, is kept
    changes = admin.get(f"/v1/admin/units/{unit['id']}/changes").json()["items"]
    assert [(c["what"], c["actor_id"]) for c in changes] == [("unit-created", "admin"),
                                                             ("unit-changed", "admin")]
    assert changes[1]["changes"] == {"name_zh": "城市更新科"}


def test_a_new_grid_leader_sees_the_communitys_cases_at_once(stack, admin, operator):
    # Given a case in Jinlong community and a leader who leads nothing yet
    _, case_id = open_case(stack, stack.client("resident-li"), category="hazard-facility",
                           location=IN_JINLONG, description="人行道井盖缺失")
    act(operator, case_id, action="assign", unit_id="comm-jinlong")
    leader_id, leader = new_leader(stack, admin)
    assert leader.get(f"/v1/cases/{case_id}").status_code in (403, 404)
    # When an admin adds a grid to the community with them as its leader
    grid = {"id": f"grid-t-{uuid.uuid4().hex[:8]}", "name_zh": "金隆社区新网格",
            "leader_id": leader_id}
    r = admin.post("/v1/admin/units/comm-jinlong/grids", json=grid)
    assert r.status_code == 201, r.text
    # then they see the community's case as soon as dispatch has the event
    wait_for(lambda: leader.get(f"/v1/cases/{case_id}").status_code == 200,
             what="the grid leader sees the case")
    listed = admin.get("/v1/admin/units").json()["items"]
    jinlong = next(u for u in listed if u["id"] == "comm-jinlong")
    assert grid["id"] in {g["id"] for g in jinlong["grids"]}


def test_a_leader_must_be_an_active_leader_account(admin):
    unit = new_unit(admin)
    r = patch(admin, f"/v1/admin/units/{unit['id']}", {"leader_id": "handler-jinjiang"})
    assert (r.status_code, r.json()["type"]) == (422, "/problems/bad-leader")
    assert r.json()["detail_zh"] == "handler-jinjiang 不是启用中的领导角色账号。"
    r = admin.post(f"/v1/admin/units/{unit['id']}/grids", json={"id": "grid-nope",
                                                               "name_zh": "网格"})
    assert (r.status_code, r.json()["type"]) == (422, "/problems/not-a-community")


def test_loading_the_reference_file_again_keeps_what_admins_changed(stack, admin, operator):
    # Given a grid of the reference file renamed and given a leader by an admin
    leader_id, _ = new_leader(stack, admin)
    path = "/v1/admin/units/comm-jinjiang/grids/grid-jinjiang-3"
    r = patch(admin, path, {"name_zh": "近江社区第三网格（调整）", "leader_id": leader_id})
    assert r.status_code == 200, r.text
    version = r.json()["version"]
    grid_in_dispatch = ("SELECT name_zh || '|' || coalesce(leader_id, '') FROM "
                        "dispatch.grids WHERE id = 'grid-jinjiang-3'")
    wait_for(lambda: stack.scalar(grid_in_dispatch) == f"近江社区第三网格（调整）|{leader_id}",
             what="dispatch's copy of the grid")
    try:
        # When the reference file is loaded again (as every provisioning does)
        ref = yaml.safe_load((ROOT / "reference" / "wangjiang.yaml").read_text("utf-8"))
        identity_refdata.load(stack.engine, ref)
        dispatch_refdata.load(stack.engine, ref)
        # then neither identity nor dispatch has lost the change
        grids = {g["id"]: g for u in admin.get("/v1/admin/units").json()["items"]
                 for g in u["grids"]}
        assert (grids["grid-jinjiang-3"]["leader_id"], grids["grid-jinjiang-3"]["version"]
                ) == (leader_id, version)
        assert stack.scalar(grid_in_dispatch) == f"近江社区第三网格（调整）|{leader_id}"
    finally:
        assert patch(admin, path, {"name_zh": "近江社区第三网格",
                                   "leader_id": None}).status_code == 200


def test_dispatch_keeps_the_newest_version_whatever_order_events_come_in(stack, admin,
                                                                          operator):
    unit = new_unit(admin)
    wait_for(lambda: unit["id"] in dispatch_units_seen(operator), what="dispatch's copy")

    def event(version: int, name: str):
        return SimpleNamespace(data={**{k: unit[k] for k in ("id", "kind", "name_en")},
                                     "name_zh": name, "leader_id": None, "version": version})

    # When version 3 arrives before version 2 (a redelivery, say)
    with Session(stack.engine) as session:
        uow = SimpleNamespace(session=session)
        applied = dispatch_units.apply_unit_changes(uow, [event(3, "第三版"), event(2, "第二版")])
        session.commit()
    # then the newer one stays
    assert applied == 1
    assert stack.scalar("SELECT name_zh FROM dispatch.units WHERE id = :u",
                        u=unit["id"]) == "第三版"
