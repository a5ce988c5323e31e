"""The secrets of a local installation (tools/stack.py): generated, kept, private, its own.

No server is needed: `settings` is what `make run` and the test stacks start every
process with.
"""
from __future__ import annotations

import stat

import pytest

from tools import stack as stk

GENERATED = ["JWT_SECRET", "S3_ACCESS_KEY", "S3_SECRET_KEY", "PINGAN365_SIM_TOKEN"]


@pytest.fixture(autouse=True)
def no_secrets_from_the_environment(monkeypatch):
    for name in (*stk.INSTALLATION_SECRETS, *stk.SEAWEEDFS_JWT_KEYS):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", GENERATED)
def test_each_secret_is_generated_and_kept_for_the_next_start(tmp_path, name):
    # Given an installation started once
    first = stk.settings(run_dir=tmp_path).env[name]
    # When it starts again
    again = stk.settings(run_dir=tmp_path).env[name]
    # Then the secret is the same, long and random
    assert again == first and len(first) >= 32


@pytest.mark.parametrize("name", GENERATED)
def test_each_secret_is_readable_by_its_owner_only(tmp_path, name):
    stk.settings(run_dir=tmp_path)
    (kept,) = [p for p in tmp_path.iterdir() if p.name == name.lower().replace("_", "-")]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


@pytest.mark.parametrize("name", GENERATED)
def test_two_installations_share_no_secret(tmp_path, name):
    one = stk.settings(run_dir=tmp_path / "one").env[name]
    other = stk.settings(run_dir=tmp_path / "other").env[name]
    assert one != other


def test_a_secret_set_in_the_environment_wins_and_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setenv("S3_SECRET_KEY", "from-the-operator")
    assert stk.settings(run_dir=tmp_path).env["S3_SECRET_KEY"] == "from-the-operator"
    assert not (tmp_path / "s3-secret-key").exists()


def test_any_named_secret_is_one_call(tmp_path):
    # e.g. the caller-id key intake needs: one more name, the same helper
    key = stk.installation_secret(tmp_path, "CALLER_ID_KEY")
    assert key == stk.installation_secret(tmp_path, "CALLER_ID_KEY")
    assert stat.S_IMODE((tmp_path / "caller-id-key").stat().st_mode) == 0o600


def test_no_documented_default_key_is_left_in_the_code():
    sources = [stk.ROOT / "tools" / "stack.py", stk.ROOT / "services" / "intake" / "config.yaml",
               stk.ROOT / "docker-compose.yml"]
    for source in sources:
        text = source.read_text(encoding="utf-8")
        for default in ("minqing-secret-key", "minqing-dev-only-secret"):
            assert default not in text, f"{source.name} still has {default}"
