"""有奖爆料 against the real servers: reports travel through the gateway, dispatch closes
their cases, rewards learns the reporters from intake's internal events and proposes,
people decide through the gateway, finance batches and pays.

Every service runs as a real process on the real RabbitMQ and PostgreSQL
(tests/fixtures.py); redelivery is a real second delivery of the same message.
"""
from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from minqing_kernel import events as ev
from minqing_kernel.outbox import ConfirmingPublisher
from tests.fixtures import IN_SHIBANQIAO, wait_for

pytestmark = pytest.mark.integration

UNIT = "comm-shibanqiao"
CATEGORY = "hazard-facility"  # reward class hazard: 20-300 yuan at normal priority
PROPOSED_FEN = 2000           # the rule's minimum, what the system proposes
CONSUMER = "rewards.propose_rewards"


@pytest.fixture(scope="module")
def people(stack):
    names = ("resident-zhang", "resident-li", "operator-chen", "operator-zhou",
             "handler-shibanqiao", "leader-jinjiang", "admin")
    return {name.split("-")[-1] if "-" in name else name: stack.client(name)
            for name in names}


def submit(client, description: str, category: str = CATEGORY) -> str:
    r = client.report(category=category, description=description, location=IN_SHIBANQIAO)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def case_of(stack, report_id: str) -> str:
    return wait_for(lambda: stack.case_for(report_id), what="the case")


def act(client, case_id: str, **action) -> dict:
    r = client.post(f"/v1/cases/{case_id}/actions", json=action)
    assert r.status_code == 200, r.text
    return r.json()


def work_and_rate(stack, p, case_id: str, rater) -> None:
    """Assign, accept, resolve; the reporter's rating closes the case."""
    act(p["chen"], case_id, action="assign", unit_id=UNIT)
    act(p["shibanqiao"], case_id, action="accept")
    act(p["shibanqiao"], case_id, action="resolve", result="已修复倾斜的路灯杆")
    close(rater, case_id)


def close(rater, case_id: str) -> None:
    r = rater.post(f"/v1/cases/{case_id}/feedback", json={"rating": 5})
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text


def rewards_of_case(stack, case_id: str) -> list:
    with stack.engine.connect() as conn:
        return conn.execute(sa.text("SELECT id::text, resident_id, amount_fen, status "
                                    "FROM rewards.rewards WHERE case_id = :c"),
                            {"c": case_id}).all()


def reward_of(stack, case_id: str):
    return wait_for(lambda: (rewards_of_case(stack, case_id) or [None])[0],
                    what="the proposed reward")


def handled(stack) -> float:
    return stack.metric("rewards", "minqing_events_handled_total", consumer=CONSUMER,
                        outcome="ok")


def redeliver_case_closed(stack, case_id: str, new_id: bool = False) -> None:
    """Publish dispatch's case.closed for the case again, byte for byte (a redelivery),
    or with a new event id (the same fact emitted twice)."""
    body = stack.scalar("SELECT body FROM dispatch.outbox WHERE subject = :c AND type = :t "
                        "ORDER BY id DESC LIMIT 1", c=case_id,
                        t=ev.event_type("case.closed"))
    event = ev.from_message(ev.CONTENT_TYPE, {}, bytes(body))
    if new_id:
        event = ev.new_event("dispatch", event.type, event.subject, event.data)
    publisher = ConfirmingPublisher(stack.st.env["AMQP_URI"])
    try:
        publisher.publish([("dispatch.events", event.type, ev.to_body(event), {})])
    finally:
        publisher.close()


def balance(client) -> int:
    r = client.get("/v1/rewards/balance")
    assert r.status_code == 200, r.text
    return r.json()["balance_fen"]


def ledger_sums(stack) -> tuple[int, int]:
    """(sum of every entry, number of transactions that do not sum to zero)."""
    total = stack.scalar("SELECT coalesce(sum(amount_fen), 0) FROM rewards.ledger_entries")
    unbalanced = stack.scalar("SELECT count(*) FROM (SELECT txn_id FROM rewards.ledger_entries "
                              "GROUP BY txn_id HAVING sum(amount_fen) <> 0) t")
    return int(total), int(unbalanced)


def test_a_reports_journey_ends_in_the_balance_exactly_once_despite_redelivery(stack, people):
    p = people
    zhang = p["zhang"]
    before = balance(zhang)
    # Given a resident's report of a damaged facility whose case is worked and rated
    case_id = case_of(stack, submit(zhang, "路灯杆倾斜，随时可能倒下"))
    work_and_rate(stack, p, case_id, zhang)
    # Then a reward is proposed for her, from the rule
    reward = reward_of(stack, case_id)
    assert (reward.resident_id, reward.amount_fen, reward.status) == (
        zhang.user["id"], PROPOSED_FEN, "proposed")
    # When case.closed is delivered again, byte for byte and as a new event
    seen = handled(stack)
    redeliver_case_closed(stack, case_id)
    redeliver_case_closed(stack, case_id, new_id=True)
    wait_for(lambda: handled(stack) >= seen + 2, what="both deliveries handled")
    # Then there is still one reward
    assert len(rewards_of_case(stack, case_id)) == 1
    # When an operator approves it
    r = p["chen"].post(f"/v1/rewards/{reward.id}/actions", json={"action": "approve"})
    assert r.status_code == 200, r.text
    # Then it is in her balance exactly once, and she sees it in her history
    assert balance(zhang) == before + PROPOSED_FEN
    mine = zhang.get("/v1/rewards").json()["items"]
    assert [(x["case_id"], x["status"]) for x in mine if x["case_id"] == case_id] == [
        (case_id, "approved")]
    assert ledger_sums(stack) == (0, 0)


def test_rewards_survive_the_consumer_killed_before_its_ack(stack, people):
    p = people
    zhang = p["zhang"]
    cases = [case_of(stack, submit(zhang, text)) for text in
             ("人行道井盖松动，踩上去会翻", "路口护栏被撞断，行人易跌落")]
    for case_id in cases:
        act(p["chen"], case_id, action="assign", unit_id=UNIT)
        act(p["shibanqiao"], case_id, action="accept")
        act(p["shibanqiao"], case_id, action="resolve", result="已修复")
    # Given rewards will be SIGKILLed after committing rewards, before acking them
    with stack.frozen_at("rewards", f"{CONSUMER}.before_ack") as kill_there:
        # When both cases close and rewards dies there
        for case_id in cases:
            close(zhang, case_id)
        kill_there()
        assert len(rewards_of_case(stack, cases[0])) == 1
    # Then the restarted rewards gets the unacked case.closed again: one reward per case
    for case_id in cases:
        reward_of(stack, case_id)
    wait_for(lambda: handled(stack) >= 1, what="a redelivered case.closed handled")
    assert [len(rewards_of_case(stack, c)) for c in cases] == [1, 1]


def test_a_merged_duplicate_pays_only_the_first_reporter(stack, people):
    p = people
    # Given two residents report the same hazard, the first one first
    first = case_of(stack, submit(p["zhang"], "消防通道被杂物堵塞，无法通行"))
    duplicate = case_of(stack, submit(p["li"], "消防通道堆了杂物，堵住了"))
    # When the operator merges the second into the first and closes it on the spot
    act(p["chen"], duplicate, action="merge", target_case_id=first, note="同一处隐患")
    act(p["chen"], first, action="close_directly", note="网格员已清理通道")
    # Then the one reward goes to the first reporter, and none to the second
    reward = reward_of(stack, first)
    assert reward.resident_id == p["zhang"].user["id"]
    assert rewards_of_case(stack, duplicate) == []
    assert all(x["case_id"] != first for x in p["li"].get("/v1/rewards").json()["items"])


def test_a_rejected_case_pays_nothing(stack, people):
    p = people
    # Given a report the command center rejects (不予受理)
    rejected = case_of(stack, submit(p["li"], "测试测试，随便写写的内容"))
    act(p["chen"], rejected, action="reject", note="内容无效")
    # When a later case closes and its reward is proposed
    later = case_of(stack, submit(p["li"], "小区路灯整排不亮，夜里很黑"))
    act(p["chen"], later, action="close_directly", note="已报修")
    reward_of(stack, later)
    # Then the rejected case earned nothing
    assert rewards_of_case(stack, rejected) == []


def test_above_the_threshold_the_proposer_cannot_approve_their_own(stack, people):
    p = people
    case_id = case_of(stack, submit(p["zhang"], "楼道配电箱冒烟，有焦味"))
    act(p["chen"], case_id, action="close_directly", note="已断电并通知物业检修")
    reward = reward_of(stack, case_id)
    # Given an operator proposes 250 yuan, above the 200-yuan threshold
    r = p["zhou"].post(f"/v1/rewards/{reward.id}/actions",
                       json={"action": "propose", "amount_fen": 25000})
    assert r.status_code == 200, r.text
    # When the same operator, then another operator, try to approve it
    own = p["zhou"].post(f"/v1/rewards/{reward.id}/actions", json={"action": "approve"})
    operator = p["chen"].post(f"/v1/rewards/{reward.id}/actions", json={"action": "approve"})
    # Then the proposer is refused (four eyes), and so is an operator (a leader's call)
    assert (own.status_code, own.json()["type"]) == (403, "/problems/four-eyes")
    assert operator.status_code == 403
    assert rewards_of_case(stack, case_id)[0].status == "proposed"
    # And the unapproved reward is in no payout: the balance never held it
    assert stack.scalar("SELECT count(*) FROM rewards.ledger_entries WHERE reward_id = :r",
                        r=reward.id) == 0
    # When a leader approves it, it is approved (she never learns who it is for)
    r = p["jinjiang"].post(f"/v1/rewards/{reward.id}/actions", json={"action": "approve"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and "resident_id" not in r.json()


def test_an_approval_past_the_daily_cap_waits_as_proposed(stack, people):
    p = people
    # Given rewards runs with a daily cap nobody's reward fits under
    stack.restart("rewards", REWARD_DAILY_CAP_FEN="1")
    try:
        case_id = case_of(stack, submit(p["li"], "小区健身区地面塌陷"))
        act(p["chen"], case_id, action="close_directly", note="已围挡")
        reward = reward_of(stack, case_id)
        # When an operator approves it, then it is refused and stays proposed
        r = p["chen"].post(f"/v1/rewards/{reward.id}/actions", json={"action": "approve"})
        assert (r.status_code, r.json()["type"]) == (409, "/problems/daily-cap")
        assert rewards_of_case(stack, case_id)[0].status == "proposed"
    finally:
        stack.restart("rewards")
    # And with the usual caps it is approved
    r = p["chen"].post(f"/v1/rewards/{reward.id}/actions", json={"action": "approve"})
    assert r.status_code == 200, r.text


def test_a_flagged_reporters_reward_is_held_until_the_flag_is_lifted(stack, people):
    p = people
    li = p["li"].user["id"]
    # Given the command center flags a reporter, and a case of hers closes
    r = p["chen"].http.put(f"{p['chen'].base}/v1/rewards/flags/{li}",
                           json={"reason": "短时间内重复爆料"})
    assert r.status_code == 200, r.text
    case_id = case_of(stack, submit(p["li"], "楼顶违建搭棚，有坠落隐患"))
    act(p["chen"], case_id, action="close_directly", note="已通知拆除")
    reward = reward_of(stack, case_id)
    # When her reward is approved, then it is held (it stays proposed)
    r = p["chen"].post(f"/v1/rewards/{reward.id}/actions", json={"action": "approve"})
    assert (r.status_code, r.json()["type"]) == (409, "/problems/reporter-flagged")
    assert rewards_of_case(stack, case_id)[0].status == "proposed"
    # When a leader lifts the flag after review, then it is approved
    r = p["jinjiang"].http.delete(f"{p['jinjiang'].base}/v1/rewards/flags/{li}")
    assert r.status_code == 200, r.text
    r = p["chen"].post(f"/v1/rewards/{reward.id}/actions", json={"action": "approve"})
    assert r.status_code == 200, r.text


def test_a_refused_reward_tells_the_resident_why(stack, people):
    p = people
    case_id = case_of(stack, submit(p["li"], "绿化带里的路灯线裸露在外"))
    act(p["chen"], case_id, action="close_directly", note="已包扎")
    reward = reward_of(stack, case_id)
    r = p["chen"].post(f"/v1/rewards/{reward.id}/actions",
                       json={"action": "refuse", "reason": "该隐患已由巡查发现并在处理中"})
    assert r.status_code == 200, r.text
    shown = [x for x in p["li"].get("/v1/rewards").json()["items"] if x["id"] == reward.id]
    assert [(x["status"], x["reason"]) for x in shown] == [
        ("refused", "该隐患已由巡查发现并在处理中")]


def test_finance_batches_pays_and_exports_a_payout_with_four_eyes(stack, people):
    p = people
    zhang, admin = p["zhang"], p["admin"]
    case_id = case_of(stack, submit(zhang, "小区门口消火栓被撞歪，漏水"))
    act(p["chen"], case_id, action="close_directly", note="已报自来水公司")
    reward = reward_of(stack, case_id)
    assert p["chen"].post(f"/v1/rewards/{reward.id}/actions",
                          json={"action": "approve"}).status_code == 200
    owed = balance(zhang)
    assert owed >= PROPOSED_FEN
    # Given finance batches every balance into payouts
    r = admin.post("/v1/payouts")
    assert r.status_code == 201, r.text
    batch = r.json()["batch_id"]
    payouts = admin.get("/v1/payouts", params={"batch_id": batch}).json()["items"]
    mine = next(x for x in payouts if x["resident_id"] == zhang.user["id"])
    assert mine["amount_fen"] == owed and balance(zhang) == 0
    # When the admin who batched it tries to approve it, then a leader does
    own = admin.post(f"/v1/payouts/{mine['id']}/actions", json={"action": "approve"})
    assert (own.status_code, own.json()["type"]) == (403, "/problems/four-eyes")
    assert p["jinjiang"].post(f"/v1/payouts/{mine['id']}/actions",
                              json={"action": "approve"}).status_code == 200
    # And finance pays it
    r = admin.post(f"/v1/payouts/{mine['id']}/actions", json={"action": "pay",
                                                              "note": "银行转账 20261206-01"})
    assert r.status_code == 200 and r.json()["status"] == "paid", r.text
    # Then a paid payout is never changed: refusing it now is a conflict; reversing it
    # is a new entry that puts the money back in her balance
    assert admin.post(f"/v1/payouts/{mine['id']}/actions",
                      json={"action": "refuse"}).status_code == 409
    r = admin.post(f"/v1/payouts/{mine['id']}/actions", json={"action": "reverse",
                                                              "note": "账户信息有误，退回"})
    assert r.status_code == 200 and r.json()["status"] == "paid" and r.json()["reversed"]
    assert balance(zhang) == owed
    assert ledger_sums(stack) == (0, 0)
    # And the finance CSV opens in a spreadsheet with the Chinese intact
    r = admin.get("/v1/payouts/export", params={"batch_id": batch})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    row = next(x for x in rows if x["兑付编号"] == mine["id"])
    assert (row["姓名"], row["金额（元）"], row["状态"], row["已冲正"]) == (
        "张阿姨", f"{owed / 100:.2f}", "已兑付", "是")


def test_the_leaderboard_counts_what_happened_and_shows_no_ids(stack, people):
    p = people
    zhang = p["zhang"]
    start = zhang.get("/v1/leaderboard", params={"period": "month"}).json()
    period = start["at"]
    mine_before = start["me"] or {"reports": 0, "valid_reports": 0, "rewards_fen": 0}
    # Given she files two reports; one is closed and its reward approved
    closed = case_of(stack, submit(zhang, "健身器材螺丝脱落，老人使用危险"))
    case_of(stack, submit(zhang, "垃圾房门坏了关不上"))
    act(p["chen"], closed, action="close_directly", note="已紧固")
    reward = reward_of(stack, closed)
    assert p["chen"].post(f"/v1/rewards/{reward.id}/actions",
                          json={"action": "approve"}).status_code == 200
    # Then the month's ranking has her with exactly those figures more, by name
    def grown():
        board = zhang.get("/v1/leaderboard", params={"period": "month", "at": period}).json()
        me = board["me"]
        return board if (me["reports"] - mine_before["reports"],
                         me["valid_reports"] - mine_before["valid_reports"],
                         me["rewards_fen"] - mine_before["rewards_fen"]) == (
            2, 1, PROPOSED_FEN) else None
    board = wait_for(grown, what="the ranking to count both reports (report.received)")
    me = board["me"]
    assert me["name"] == "张阿姨" and me["is_me"]
    assert all("resident_id" not in row for row in board["items"])
    # And another resident sees her name in the ranking, not her id
    other = p["li"].get("/v1/leaderboard", params={"period": "year"}).json()
    assert "张阿姨" in {row["name"] for row in other["items"]}
    assert zhang.user["id"] not in str(other)
    # And the year's 爆料达人 list has the same figures, as JSON and as a CSV with the
    # Chinese intact
    year = p["li"].get("/v1/leaderboard/top-reporters", params={"limit": 100}).json()
    row = next(r for r in year["items"] if r["name"] == "张阿姨")
    r = p["li"].get("/v1/leaderboard/top-reporters", params={"limit": 100, "format": "csv"})
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {k: v for k, v in next(x for x in table if x["姓名"] == "张阿姨").items()} == {
        "名次": str(row["rank"]), "姓名": "张阿姨", "爆料数": str(row["reports"]),
        "有效爆料数": str(row["valid_reports"]),
        "奖励金额（元）": f"{row['rewards_fen'] / 100:.2f}"}


def test_an_admin_edits_a_rule_and_the_change_is_audited(stack, people):
    admin = people["admin"]
    r = admin.http.put(f"{admin.base}/v1/rewards/rules/property/low",
                       json={"min_fen": 500, "max_fen": 6000})
    assert r.status_code == 200, r.text
    changes = admin.get("/v1/rewards/rules/changes").json()["items"]
    assert (changes[0]["reward_class"], changes[0]["priority"], changes[0]["after"],
            changes[0]["actor_id"]) == ("property", "low", {"min_fen": 500, "max_fen": 6000},
                                        admin.user["id"])
    bad = admin.http.put(f"{admin.base}/v1/rewards/rules/property/low",
                         json={"min_fen": 100, "max_fen": 6000})
    assert bad.status_code == 422
