"""A submission repeated (a phone's retry, a redelivered RPC) makes one report, not two."""
import uuid

import pytest

from tests.fixtures import wait_for

pytestmark = pytest.mark.integration


def test_the_same_idempotency_key_twice_gives_one_report_and_one_case(stack):
    resident = stack.client("resident-li")
    key = {"Idempotency-Key": f"phone-retry-{uuid.uuid4()}"}
    before = stack.scalar("SELECT count(*) FROM intake.reports")

    first = resident.report(description="小区门口井盖缺失，夜间危险", headers=key)
    again = resident.report(description="小区门口井盖缺失，夜间危险", headers=key)

    assert first.status_code == 201 and again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert stack.scalar("SELECT count(*) FROM intake.reports") == before + 1
    wait_for(lambda: stack.case_for(first.json()["id"]), what="the case")
    # one report.submitted (public) and one report.received (internal), not two of each
    assert stack.scalar("SELECT count(*) FROM intake.outbox WHERE subject = :r",
                        r=first.json()["id"]) == 2


def test_another_user_with_the_same_key_gets_a_report_of_their_own(stack):
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    mine = stack.client("resident-li").report(headers=key).json()["id"]
    theirs = stack.client("resident-wang").report(headers=key).json()["id"]
    assert mine != theirs


def test_without_a_key_two_submissions_are_two_reports(stack):
    resident = stack.client("resident-li")
    assert resident.report().json()["id"] != resident.report().json()["id"]
