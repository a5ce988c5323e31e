"""Open311 partners' API keys: random, shown once, kept as a hash, acting as a partner."""
from __future__ import annotations

from services.identity.domain import (
    API_KEY_PREFIX,
    api_key_hash,
    api_key_refused,
    new_api_key,
    partner_actor,
)


def test_a_new_key_names_its_id_and_carries_a_long_random_secret():
    key_id, key = new_api_key()
    assert key.startswith(f"{API_KEY_PREFIX}{key_id}_")
    assert len(key) > len(API_KEY_PREFIX) + len(key_id) + 40
    assert new_api_key()[1] != key


def test_a_key_is_stored_as_its_sha256_not_itself():
    _, key = new_api_key()
    stored = api_key_hash(key)
    assert len(stored) == 64 and key not in stored and stored == api_key_hash(key)


def test_a_key_acts_as_its_partner_with_the_partner_role_only():
    assert partner_actor("partner-demo") == {"id": "partner-demo", "roles": ["partner"],
                                             "unit_id": None}


def test_a_missing_key_and_a_wrong_one_are_both_403_saying_which():
    assert (api_key_refused(False).status, api_key_refused(False).code) == (
        403, "api-key-missing")
    assert api_key_refused(True).code == "api-key-invalid"
