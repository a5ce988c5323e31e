"""Routing against the real reference data, and the audit trail's hash chain."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from shapely.geometry import shape

from services.dispatch.domain import GENESIS, Router, Rule, chain_hash

REFERENCE = Path(__file__).resolve().parents[3] / "reference" / "wangjiang.yaml"
REF = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))

# Built the way refdata.load stores them and handlers.RefData reads them back.
COMMUNITIES = {c["id"]: {"type": "Polygon", "coordinates": [c["boundary"]]}
               for c in REF["communities"]}
RULES = [Rule(r["category"], r["community"], r["unit"], r["reason_zh"], r["reason_en"])
         for r in REF["routing_rules"]]
OUTSIDE = (30.30, 120.30)


def inside(community_id: str) -> tuple[float, float]:
    """(lat, lon) of a point certainly inside the community."""
    point = shape(COMMUNITIES[community_id]).representative_point()
    return point.y, point.x


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(COMMUNITIES, RULES)


@pytest.mark.parametrize("community_id", sorted(COMMUNITIES))
def test_a_point_in_a_community_is_found_in_it(router, community_id):
    assert router.community_at(*inside(community_id)) == community_id


def test_a_point_outside_every_community_is_in_none(router):
    assert router.community_at(*OUTSIDE) is None


@pytest.mark.parametrize("community_id", sorted(COMMUNITIES))
def test_by_default_the_community_where_it_happened_handles_it(router, community_id):
    suggestion = router.suggest("suggestion-general", *inside(community_id))
    assert suggestion.community_id == community_id
    assert suggestion.unit_id == community_id
    assert suggestion.reason_zh == "属地社区处置"


def test_a_micro_wish_in_jinjiang_goes_to_the_red_armband_volunteers(router):
    suggestion = router.suggest("help-wish", *inside("comm-jinjiang"))
    assert suggestion.unit_id == "vol-hongxiuzhang"
    assert suggestion.community_id == "comm-jinjiang"


@pytest.mark.parametrize("community_id", sorted(set(COMMUNITIES) - {"comm-jinjiang"}))
def test_a_micro_wish_elsewhere_goes_to_its_community(router, community_id):
    assert router.suggest("help-wish", *inside(community_id)).unit_id == community_id


@pytest.mark.parametrize("community_id", sorted(COMMUNITIES))
def test_a_fire_hazard_anywhere_goes_to_work_safety(router, community_id):
    suggestion = router.suggest("hazard-fire", *inside(community_id))
    assert suggestion.unit_id == "dept-anjian"
    assert suggestion.reason_zh == "消防隐患由安监科统一处置"


def test_a_fire_hazard_outside_every_community_still_goes_to_work_safety(router):
    suggestion = router.suggest("hazard-fire", *OUTSIDE)
    assert suggestion.community_id is None
    assert suggestion.unit_id == "dept-anjian"


@pytest.mark.parametrize(("category", "community_id", "unit_id"), [
    ("hazard-rubbish", "comm-qiutao", "comm-qiutao"),
    ("hazard-rubbish", "comm-jinlong", "dept-chengguan"),
    ("dispute-neighbor", "comm-wangjiangmen", "comm-wangjiangmen"),
    ("dispute-neighbor", "comm-wujiang", "org-heshilao"),
])
def test_category_and_community_beats_category_beats_community(router, category,
                                                                 community_id, unit_id):
    assert router.suggest(category, *inside(community_id)).unit_id == unit_id


def test_the_order_rules_are_given_in_does_not_matter():
    router = Router(COMMUNITIES, list(reversed(RULES)))
    assert router.suggest("help-wish", *inside("comm-jinjiang")).unit_id == "vol-hongxiuzhang"
    assert router.suggest("hazard-fire", *inside("comm-jinjiang")).unit_id == "dept-anjian"


def test_an_unknown_category_falls_back_to_the_community_rule(router):
    suggestion = router.suggest("no-such-category", *inside("comm-shibanqiao"))
    assert suggestion.unit_id == "comm-shibanqiao"


def test_an_unknown_category_outside_every_community_has_no_unit(router):
    suggestion = router.suggest("no-such-category", *OUTSIDE)
    assert suggestion.unit_id is None
    assert suggestion.reason_zh and suggestion.reason_en


def test_with_no_rules_the_operator_chooses_and_is_told_why():
    suggestion = Router(COMMUNITIES, []).suggest("hazard-fire", *inside("comm-jinlong"))
    assert suggestion.community_id == "comm-jinlong"
    assert suggestion.unit_id is None
    assert "人工派单" in suggestion.reason_zh
    assert suggestion.reason_en


# --- the audit chain ---------------------------------------------------------------------

ENTRY = {"case_id": "c-1", "seq": 2, "at": "2024-05-01T08:00:00+00:00", "actor_id": "op-1",
         "actor_role": "operator", "action": "assign", "from_status": "screening",
         "to_status": "assigned", "unit_id": "comm-jinjiang", "note": "请尽快处理",
         "attachments": ["uploads/op-1/a.jpg"]}
PREV = chain_hash(GENESIS, {**ENTRY, "seq": 1, "action": "open"})


def test_the_hash_is_a_sha256_hex_digest():
    digest = chain_hash(PREV, ENTRY)
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_equal_input_gives_an_equal_hash():
    assert chain_hash(PREV, dict(ENTRY)) == chain_hash(PREV, ENTRY)


def test_the_order_of_fields_does_not_change_the_hash():
    assert chain_hash(PREV, dict(reversed(list(ENTRY.items())))) == chain_hash(PREV, ENTRY)


@pytest.mark.parametrize("field", sorted(ENTRY))
def test_changing_any_field_changes_the_hash(field):
    changed = {**ENTRY, field: "tampered"}
    assert chain_hash(PREV, changed) != chain_hash(PREV, ENTRY)


def test_changing_the_previous_hash_changes_the_hash():
    assert chain_hash(GENESIS, ENTRY) != chain_hash(PREV, ENTRY)


def test_the_suggestion_explains_which_rule_matched_and_why(router):
    # given a fire hazard in Qiutao (a category-wide rule beats the community default)
    suggestion = router.suggest("hazard-fire", *inside("comm-qiutao"))
    # then the explanation names the rule, how specific it is and where the place lies
    assert suggestion.unit_id == "dept-anjian"
    assert suggestion.rule["category"] == "hazard-fire"
    assert suggestion.rule["community"] == "*"
    assert "the category matches exactly" in suggestion.rule["why_en"]
    assert "comm-qiutao" in suggestion.rule["why_en"]
    assert "类别精确匹配" in suggestion.rule["why_zh"]


def test_the_most_specific_rule_is_explained_as_such(router):
    suggestion = router.suggest("hazard-rubbish", *inside("comm-qiutao"))
    assert suggestion.unit_id == "comm-qiutao"
    assert "both the category and the community" in suggestion.rule["why_en"]


def test_no_match_is_explained_too():
    suggestion = Router(COMMUNITIES, []).suggest("hazard-fire", *OUTSIDE)
    assert suggestion.unit_id is None
    assert suggestion.rule["id"] is None
    assert "no community" in suggestion.rule["why_en"]
