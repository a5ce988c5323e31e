"""Text that looks like SQL, HTML or script is stored as text and returned inert."""
import pytest

from tests.fixtures import wait_for

pytestmark = pytest.mark.integration

PAYLOADS = [
    "'); DROP TABLE intake.reports; -- 楼道堆物",
    "<script>alert('xss')</script> 楼道堆物",
    '<img src=x onerror="fetch(\'//evil\')"> 楼道堆物',
    "Robert'); DELETE FROM dispatch.cases WHERE ('1'='1 楼道堆物",
    "{{7*7}} ${7*7} %s%s%s 楼道堆物",
]


@pytest.mark.parametrize("text", PAYLOADS, ids=["sql", "script", "html", "sql-2", "template"])
def test_hostile_text_is_stored_verbatim_and_returned_as_inert_json(stack, text):
    resident = stack.client("resident-wang")
    reports_before = stack.scalar("SELECT count(*) FROM intake.reports")

    r = resident.report(description=text, address=text[:200])

    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    report = resident.get(f"/v1/reports/{r.json()['id']}").json()
    assert report["description"] == text and report["address"] == text[:200]
    # The database is intact and holds exactly what was sent.
    assert stack.scalar("SELECT count(*) FROM intake.reports") == reports_before + 1
    assert stack.scalar("SELECT description FROM intake.reports WHERE id = :i",
                        i=report["id"]) == text
    case_id = wait_for(lambda: stack.case_for(report["id"]), what="the case")
    case = stack.client("operator-chen").get(f"/v1/cases/{case_id}").json()
    assert case["description"] == text
