"""Who a partner platform is, and which report its event makes: plain rules, no I/O."""
import uuid

import pytest

from minqing_kernel.errors import Forbidden
from services.intake import domain, handlers


def test_a_partners_broker_user_names_the_partner():
    assert domain.partner_name("partner-ping_an_365") == "ping_an_365"


@pytest.mark.parametrize("user_id", [None, "", "guest", "partner-", "partner-Bad.Name",
                                     "partner-a.b", "xpartner-ping_an_365"])
def test_a_user_that_is_not_a_partners_is_not_one(user_id):
    assert domain.partner_name(user_id) is None


def test_a_message_without_a_partners_user_id_is_refused_in_both_languages():
    with pytest.raises(Forbidden) as refused:
        domain.partner_actor(None)
    assert refused.value.code == "unknown-partner"
    assert "user_id" in refused.value.detail_en and "user_id" in refused.value.detail_zh


def test_the_partner_submits_its_reports_on_the_partner_channel():
    actor = domain.partner_actor("partner-ping_an_365")
    assert actor == {"id": "partner-ping_an_365", "roles": ["partner"]}
    assert domain.channel_for(actor, "partner") == "partner"


def test_one_report_per_partner_and_event_id():
    a = domain.partner_report_id("partner-a", "evt-1")
    # The same event again finds the same report; another partner's same id does not
    assert a == domain.partner_report_id("partner-a", "evt-1")
    assert a != domain.partner_report_id("partner-b", "evt-1")
    assert uuid.UUID(a).version == 5


def test_a_partners_refusals_go_to_its_rejection_route_and_others_to_the_operators():
    assert handlers.partner_rejections_route("partner-a1") == ("partners.rejections", "a1")
    assert handlers.partner_rejections_route("guest") is None
    assert handlers.partner_rejections_route(None) is None
