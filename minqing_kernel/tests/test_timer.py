"""The configured timer takes its interval from the service's config."""
from types import SimpleNamespace

import pytest

from minqing_kernel.timer import ConfiguredTimer


def timer_with(config: dict, default: float = 30.0) -> ConfiguredTimer:
    t = ConfiguredTimer("SCAN_S", default)
    t.container = SimpleNamespace(config=config)
    t.setup()
    return t


def test_the_interval_is_read_from_the_config_key():
    assert timer_with({"SCAN_S": "0.5"}).interval == 0.5


def test_without_the_key_the_default_interval_holds():
    assert timer_with({}).interval == 30.0
    assert timer_with({"SCAN_S": ""}).interval == 30.0


def test_a_non_positive_interval_is_refused_at_start():
    with pytest.raises(ValueError, match="SCAN_S"):
        timer_with({"SCAN_S": "0"})
