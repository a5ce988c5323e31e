"""How a case looks to Open311: two states, and notes that name nobody."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.dispatch.domain import STATUSES
from services.dispatch.open311 import open311_status, public_note


@pytest.mark.parametrize("status", ["closed", "rejected", "merged"])
def test_finished_refused_and_merged_cases_are_closed(status):
    assert open311_status(status) == "closed"


@pytest.mark.parametrize("status", [s for s in STATUSES if s not in ("closed", "rejected",
                                                                     "merged")]
                         + ["a-status-added-later"])
def test_every_other_state_is_open(status):
    assert open311_status(status) == "open"


def entry(role: str, action: str, note: str | None):
    return SimpleNamespace(actor_role=role, action=action, note=note)


def test_staff_notes_are_shown():
    assert public_note(entry("operator", "assign", "转城管科")) == "转城管科"


@pytest.mark.parametrize("role, action", [("reporter", "rate_unsatisfied"),
                                          ("system", "open")])
def test_a_reporters_words_and_the_systems_bookkeeping_become_the_actions_name(role, action):
    assert public_note(entry(role, action, "我是王晓红，电话 13800000003")) in (
        "不满意评价", "立案")
