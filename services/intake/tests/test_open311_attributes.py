"""A category's Open311 attributes: the answers a report may carry, checked against the
definitions in the reference data."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from minqing_kernel.errors import Invalid
from services.intake.domain import check_attributes

REFERENCE = Path(__file__).resolve().parents[3] / "reference" / "wangjiang.yaml"
ASKED = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))["category_attributes"]
FACILITY, FIRE, NOISE = ASKED["hazard-facility"], ASKED["hazard-fire"], ASKED["dispute-noise"]


def refused(definitions, answers, **kw) -> Invalid:
    with pytest.raises(Invalid) as raised:
        check_attributes(definitions, answers, **kw)
    assert raised.value.code == "bad-attribute"
    return raised.value


def test_answers_of_the_right_kinds_are_kept():
    assert check_attributes(NOISE, {"noise_source": ["music", "music", "traffic"],
                                    "noticed_at": "2026-11-30T22:00:00+08:00"}) == {
        "noise_source": ["music", "traffic"], "noticed_at": "2026-11-30T22:00:00+08:00"}
    assert check_attributes(FIRE, {"floor": "12"}) == {"floor": "12"}


def test_nothing_asked_and_nothing_answered_is_none():
    assert check_attributes([], None) is None
    assert check_attributes(FIRE, {"floor": ""}) is None


def test_a_required_answer_binds_only_clients_that_read_the_definitions():
    assert "facility" in refused(FACILITY, {}).detail_en
    assert check_attributes(FACILITY, {}, enforce_required=False) is None


@pytest.mark.parametrize("definitions, answers, field", [
    (FACILITY, {"facility": "moon"}, "facility"),          # not one of the values
    (FACILITY, {"facility": ["bench"]}, "facility"),       # a single value list takes one
    (NOISE, {"noise_source": ["music", "opera"]}, "noise_source"),
    (FIRE, {"floor": "third"}, "floor"),
    (FIRE, {"floor": "nan"}, "floor"),
    (NOISE, {"noticed_at": "last night"}, "noticed_at"),
    (FIRE, {"colour": "red"}, "colour"),                   # not asked by this category
])
def test_a_wrong_answer_is_refused_naming_the_attribute(definitions, answers, field):
    problem = refused(definitions, answers)
    assert problem.errors == [{"field": f"attributes.{field}",
                               "message": problem.errors[0]["message"],
                               "message_zh": problem.errors[0]["message_zh"]}]
