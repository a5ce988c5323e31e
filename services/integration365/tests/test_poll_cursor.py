"""Where the next poll of the partner's updates starts (handlers.next_cursor)."""
from datetime import UTC, datetime, timedelta

from services.integration365.adapters import RemoteUpdate
from services.integration365.handlers import MAX_HOLD, next_cursor

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def update(minutes: float, remote_id: str = "PA-1") -> RemoteUpdate:
    return RemoteUpdate(f"U{minutes}", remote_id, "IN_PROGRESS", None,
                        T0 + timedelta(minutes=minutes))


def test_without_updates_the_cursor_stays():
    assert next_cursor(T0, [], [], T0) == T0


def test_the_cursor_moves_to_the_newest_update():
    assert next_cursor(T0, [update(1), update(3)], [], T0) == T0 + timedelta(minutes=3)


def test_an_update_for_a_work_order_we_cannot_place_yet_holds_the_cursor_back():
    unplaced = update(2, "PA-unknown")
    assert next_cursor(T0, [update(1), unplaced, update(3)], [unplaced],
                       T0 + timedelta(minutes=4)) == T0 + timedelta(minutes=2)


def test_an_update_unplaced_for_longer_than_the_hold_no_longer_holds_the_cursor():
    unplaced = update(2, "PA-unknown")
    later = T0 + timedelta(minutes=2) + MAX_HOLD + timedelta(seconds=1)
    assert next_cursor(T0, [unplaced, update(3)], [unplaced], later) == \
        T0 + timedelta(minutes=3)


def test_the_cursor_never_moves_backwards():
    since = T0 + timedelta(minutes=10)
    assert next_cursor(since, [update(1)], [], since) == since
