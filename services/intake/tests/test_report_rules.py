"""What a report may carry, where it may be, and who may submit and read it."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from minqing_kernel.errors import Conflict, Forbidden, Invalid, TooLarge
from minqing_kernel.keys import MissingSecretKey, check_key
from services.intake import domain
from services.intake.domain import MB, Attachment, ServiceArea, Upload

REFERENCE = Path(__file__).resolve().parents[3] / "reference" / "wangjiang.yaml"
SUBDISTRICT = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))["subdistrict"]
INSIDE = (30.2450, 120.1860)
OUTSIDE = (30.30, 120.30)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00"
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00"
MP3_FRAME = b"\xff\xfb\x90\x64\x00\x00\x00\x00"
TEXT = b"just some text, renamed .jpg"


@dataclass(frozen=True)
class Stat:
    """The object store's metadata, as much of it as check_attachment reads."""
    content_type: str | None
    size: int


# --- media -------------------------------------------------------------------------------

@pytest.mark.parametrize(("content_type", "rule"), [
    ("image/jpeg", ("photo", "jpg", 10 * MB)),
    ("image/png", ("photo", "png", 10 * MB)),
    ("image/webp", ("photo", "webp", 10 * MB)),
    ("image/heic", ("photo", "heic", 10 * MB)),
    ("video/mp4", ("video", "mp4", 100 * MB)),
    ("video/quicktime", ("video", "mov", 100 * MB)),
    ("audio/mp4", ("voice", "m4a", 10 * MB)),
    ("audio/mpeg", ("voice", "mp3", 10 * MB)),
    ("audio/aac", ("voice", "aac", 10 * MB)),
    ("audio/amr", ("voice", "amr", 10 * MB)),
])
def test_an_allowed_type_up_to_its_limit_gives_kind_extension_and_limit(content_type, rule):
    assert domain.media_rule(content_type, rule[2]) == rule


@pytest.mark.parametrize("content_type", sorted(domain.MEDIA))
def test_one_byte_over_the_limit_is_too_large(content_type):
    limit = domain.MEDIA[content_type][2]
    with pytest.raises(TooLarge) as raised:
        domain.media_rule(content_type, limit + 1)
    assert raised.value.code == "attachment-too-large"
    assert raised.value.status == 413


@pytest.mark.parametrize("content_type", ["application/pdf", "text/plain", "image/gif", ""])
def test_other_types_are_not_allowed(content_type):
    with pytest.raises(Invalid) as raised:
        domain.media_rule(content_type, 1)
    assert raised.value.code == "attachment-type-not-allowed"
    assert raised.value.status == 422


@pytest.mark.parametrize(("content_type", "head"), [
    ("image/jpeg", JPEG),
    ("image/png", PNG),
    ("video/mp4", MP4),
    ("audio/mpeg", MP3_ID3),
    ("audio/mpeg", MP3_FRAME),
])
def test_the_first_bytes_of_a_real_file_match_its_type(content_type, head):
    assert domain.magic_matches(content_type, head)


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "video/mp4", "audio/mpeg"])
def test_a_text_file_matches_no_media_type(content_type):
    assert not domain.magic_matches(content_type, TEXT)


def test_a_png_is_not_a_jpeg():
    assert not domain.magic_matches("image/jpeg", PNG)


# --- object keys and ownership of uploads -------------------------------------------------

UPLOAD = Upload("uploads/0123456789abcdef0123456789abcdef.jpg", "res-1", "image/jpeg", 2048)
COPY = "attachments/fedcba9876543210fedcba9876543210.jpg"


def test_an_upload_key_is_random_and_carries_no_owner():
    # the function cannot name an owner: it is not given one
    first, second = domain.upload_key("image/jpeg"), domain.upload_key("image/jpeg")
    assert first != second
    assert domain.UPLOAD_KEY.match(first) and first.endswith(".jpg")


def test_an_attachment_key_is_random_and_outside_the_uploads():
    key = domain.attachment_key("image/png")
    assert key.startswith(domain.ATTACHMENT_PREFIX) and key.endswith(".png")
    assert not key.startswith(domain.UPLOAD_PREFIX)


def test_an_upload_issued_to_one_is_theirs():
    assert domain.check_upload_owner("res-1", UPLOAD.key, UPLOAD) == UPLOAD


@pytest.mark.parametrize("owner, upload", [("res-2", UPLOAD), ("res-1", None)])
def test_someone_elses_upload_and_an_unknown_one_are_refused_alike(owner, upload):
    with pytest.raises(Forbidden) as raised:
        domain.check_upload_owner(owner, UPLOAD.key, upload)
    assert raised.value.code == "attachment-not-yours"
    assert raised.value.status == 403


def test_an_upload_not_used_yet_or_used_for_the_same_thing_may_be_attached():
    domain.check_single_use(UPLOAD.key, None, "report:1")
    domain.check_single_use(UPLOAD.key, "report:1", "report:1")


def test_an_upload_used_for_one_report_is_refused_for_another():
    with pytest.raises(Conflict) as raised:
        domain.check_single_use(UPLOAD.key, "report:1", "report:2")
    assert raised.value.code == "attachment-already-used"
    assert raised.value.status == 409


def test_a_checked_attachment_is_its_copy():
    attachment = domain.check_attachment(UPLOAD, COPY, Stat("image/jpeg", 2048), JPEG)
    assert attachment == Attachment(COPY, "image/jpeg", 2048)


def test_the_stored_content_type_is_normalised():
    attachment = domain.check_attachment(UPLOAD, COPY,
                                         Stat("Image/JPEG; charset=binary", 2048), JPEG)
    assert attachment.content_type == "image/jpeg"


def test_an_attachment_not_uploaded_is_missing():
    with pytest.raises(Invalid) as raised:
        domain.check_attachment(UPLOAD, COPY, None, None)
    assert raised.value.code == "attachment-missing"
    assert raised.value.status == 422


@pytest.mark.parametrize("head", [TEXT, None, b""])
def test_an_attachment_whose_bytes_do_not_match_its_type_is_refused(head):
    with pytest.raises(Invalid) as raised:
        domain.check_attachment(UPLOAD, COPY, Stat("image/jpeg", 2048), head)
    assert raised.value.code == "attachment-wrong-type"


@pytest.mark.parametrize("stored", ["text/html", "image/png", None])
def test_an_attachment_stored_as_another_type_than_declared_is_refused(stored):
    # a store that does not enforce the POST policy's Content-Type is caught here
    with pytest.raises(Invalid) as raised:
        domain.check_attachment(UPLOAD, COPY, Stat(stored, 2048), JPEG)
    assert raised.value.code == "attachment-wrong-type"


def test_an_attachment_larger_than_declared_is_refused():
    # a store that does not enforce the policy's content-length-range is caught here
    with pytest.raises(TooLarge) as raised:
        domain.check_attachment(UPLOAD, COPY, Stat("image/jpeg", 2049), JPEG)
    assert raised.value.code == "attachment-too-large"
    assert raised.value.status == 413


def test_an_attachment_over_its_kinds_limit_is_refused_whatever_was_declared():
    declared = Upload(UPLOAD.key, "res-1", "image/jpeg", 20 * MB)
    with pytest.raises(TooLarge) as raised:
        domain.check_attachment(declared, COPY, Stat("image/jpeg", 10 * MB + 1), JPEG)
    assert raised.value.code == "attachment-too-large"


# --- where -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def area() -> ServiceArea:
    return ServiceArea({"type": "Polygon", "coordinates": [SUBDISTRICT["boundary"]]})


def test_a_point_in_wangjiang_is_in_the_service_area(area):
    assert area.contains(*INSIDE)


def test_a_point_elsewhere_in_hangzhou_is_not(area):
    assert not area.contains(*OUTSIDE)


def test_a_report_in_the_area_passes_the_location_check(area):
    assert domain.check_location(area, *INSIDE) is None


def test_a_report_outside_the_area_is_refused(area):
    with pytest.raises(Invalid) as raised:
        domain.check_location(area, *OUTSIDE)
    assert raised.value.code == "out-of-area"
    assert raised.value.status == 422
    assert "望江街道" in raised.value.detail_zh


# --- channel -----------------------------------------------------------------------------

RESIDENT = {"id": "res-1", "roles": ["resident"], "unit_id": None}
OPERATOR = {"id": "op-1", "roles": ["operator"], "unit_id": None}
PATROLLER = {"id": "pat-1", "roles": ["patroller"], "unit_id": None}
PATROLLING_RESIDENT = {"id": "pat-2", "roles": ["patroller", "resident"], "unit_id": None}
HANDLER = {"id": "h-1", "roles": ["handler"], "unit_id": "comm-jinjiang"}


@pytest.mark.parametrize(("actor", "requested", "channel"), [
    (RESIDENT, None, "app"),
    (RESIDENT, "app", "app"),
    (OPERATOR, None, "phone"),
    (OPERATOR, "phone", "phone"),
    (PATROLLER, None, "patrol"),
    (PATROLLER, "app", "app"),
    (PATROLLING_RESIDENT, None, "patrol"),
    (PATROLLING_RESIDENT, "patrol", "patrol"),
    (PATROLLING_RESIDENT, "app", "app"),
])
def test_the_channel_follows_from_who_submits(actor, requested, channel):
    # A patroller (even one who is also a resident) files as patrol unless they say app.
    assert domain.channel_for(actor, requested) == channel


@pytest.mark.parametrize("requested", [None, "app"])
def test_a_handler_cannot_submit_reports(requested):
    with pytest.raises(Forbidden) as raised:
        domain.channel_for(HANDLER, requested)
    assert raised.value.status == 403


@pytest.mark.parametrize(("actor", "requested"), [
    (OPERATOR, "app"),
    (RESIDENT, "phone"),
    (RESIDENT, "patrol"),
    (PATROLLER, "phone"),
])
def test_a_channel_not_open_to_ones_roles_is_refused(actor, requested):
    with pytest.raises(Forbidden) as raised:
        domain.channel_for(actor, requested)
    assert raised.value.code == "channel-not-allowed"


KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def test_a_callers_id_does_not_reveal_their_number():
    phone = "13800000001"
    cid = domain.caller_id(phone, KEY)
    assert phone not in cid
    assert cid.startswith("caller-")
    assert len(cid) == len("caller-") + 32


def test_a_callers_id_is_stable():
    assert domain.caller_id("13800000001", KEY) == domain.caller_id("13800000001", KEY)


def test_different_callers_have_different_ids():
    assert domain.caller_id("13800000001", KEY) != domain.caller_id("13800000002", KEY)


def test_a_callers_id_is_a_keyed_hmac_of_the_number():
    expected = hmac.new(KEY, b"minqing-caller:13800000001", hashlib.sha256).hexdigest()[:32]
    assert domain.caller_id("13800000001", KEY) == f"caller-{expected}"


def test_the_same_caller_has_another_id_under_another_installations_key():
    assert domain.caller_id("13800000001", KEY) != domain.caller_id("13800000001",
                                                                      OTHER_KEY)


def test_a_callers_id_cannot_be_recomputed_without_the_key():
    # Given the id of a caller whose number's first 7 digits are known (issue #10, 3)
    target = domain.caller_id("13912345678", KEY)
    # When an attacker without the key hashes every number of that block, as before
    # (unkeyed SHA-256 of the fixed prefix, whole or cut), or under a guessed key
    found = []
    for n in range(10_000):
        phone = f"1391234{n:04d}"
        plain = hashlib.sha256(f"minqing-caller:{phone}".encode()).hexdigest()
        guessed = domain.caller_id(phone, b"minqing" * 5)
        if target.removeprefix("caller-") in (plain[:16], plain[:32]) or guessed == target:
            found.append(phone)
    # Then no number matches: only the key gives the id
    assert found == []


@pytest.mark.parametrize("value", [None, "", "short", " " * 40])
def test_a_service_will_not_start_without_a_long_enough_key(value):
    with pytest.raises(MissingSecretKey) as raised:
        check_key("CALLER_ID_KEY", value)
    assert "CALLER_ID_KEY" in str(raised.value)


def test_a_long_enough_key_is_used_as_its_bytes():
    assert check_key("CALLER_ID_KEY", "x" * 32) == b"x" * 32


# --- who may read a report ---------------------------------------------------------------

@pytest.mark.parametrize("role", ["operator", "admin", "discipline"])
def test_command_center_and_discipline_read_any_report(role):
    assert domain.can_read_report({"id": "x", "roles": [role]}, "res-1", "res-1")


def test_a_leader_does_not_read_a_report_whose_case_is_not_in_a_unit_they_lead():
    leader = {"id": "leader-1", "roles": ["leader"]}
    assert domain.is_scoped_leader(leader)
    assert not domain.can_read_report(leader, "res-1", "res-1")


def test_a_leader_reads_a_report_whose_case_is_in_a_unit_they_lead():
    leader = {"id": "leader-1", "roles": ["leader"]}
    assert domain.can_read_report(leader, "res-1", "res-1", case_led=True)


def test_only_a_leader_is_scoped_by_the_units_they_lead():
    assert not domain.can_read_report(HANDLER, "res-1", "res-1", case_led=True)
    assert not domain.is_scoped_leader({"id": "x", "roles": ["leader", "operator"]})


def test_the_reporter_reads_their_report():
    assert domain.can_read_report(RESIDENT, "res-1", "op-1")


def test_whoever_submitted_it_reads_the_report():
    assert domain.can_read_report(PATROLLER, "caller-abc", "pat-1")


@pytest.mark.parametrize("actor", [{"id": "res-2", "roles": ["resident"]}, HANDLER])
def test_others_do_not_read_the_report(actor):
    assert not domain.can_read_report(actor, "res-1", "res-1")
