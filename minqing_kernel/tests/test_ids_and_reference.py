"""The kernel's id reading and its per-process reference data, without a server."""
from __future__ import annotations

import pytest

from minqing_kernel import reference
from minqing_kernel.errors import NotFound
from minqing_kernel.ids import uuid_or_404, uuid_or_none
from minqing_kernel.reference import TimedReference

ID = "8c6f4a4e-0d2b-4c1e-9a57-1f0c3e5b0e7c"


def test_given_an_uppercase_uuid_when_read_then_it_comes_back_canonical():
    assert uuid_or_none(ID.upper()) == ID
    assert uuid_or_404(ID.upper(), "case") == ID


@pytest.mark.parametrize("value", ["", "not-an-id", None, 42, "1" * 40])
def test_given_something_that_is_not_a_uuid_when_read_then_none(value):
    assert uuid_or_none(value) is None


def test_given_a_bad_id_when_it_must_name_something_then_404_in_both_languages():
    with pytest.raises(NotFound) as refused:
        uuid_or_404("nope", "project")
    assert refused.value.detail_en == "No project nope."
    assert refused.value.detail_zh == "项目 nope 不存在。"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(reference.time, "monotonic", fake.monotonic)
    return fake


def test_given_loaded_data_when_asked_within_the_ttl_then_it_is_not_read_again(clock):
    loads = []
    ref = TimedReference(lambda source: loads.append(source) or len(loads), ttl_s=60)
    assert ref.fresh("db") == 1
    clock.now += 59
    assert ref.fresh("db") == 1 and loads == ["db"]


def test_given_loaded_data_when_the_ttl_has_passed_then_it_is_read_again(clock):
    loads = []
    ref = TimedReference(lambda source: loads.append(source) or len(loads), ttl_s=60)
    ref.fresh("db")
    clock.now += 61
    assert ref.fresh("db") == 2


def test_given_loaded_data_when_invalidated_then_the_next_use_reads_it_again(clock):
    loads = []
    ref = TimedReference(lambda source: loads.append(source) or len(loads), ttl_s=60)
    ref.fresh("db")
    ref.invalidate()
    assert ref.fresh("db") == 2


def test_given_an_invalidation_during_a_load_then_the_next_use_reads_again(clock):
    loads = []
    ref = TimedReference(lambda source: None, ttl_s=60)

    def load_while_a_change_commits(source):
        loads.append(source)
        if len(loads) == 1:
            ref.invalidate()  # another greenthread's change, committed mid-load
        return len(loads)

    ref._load = load_while_a_change_commits
    assert ref.fresh("db") == 1
    assert ref.fresh("db") == 2  # what was read before the change is not kept 60 s
