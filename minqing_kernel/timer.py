"""A timer entrypoint whose interval comes from the service's config (the environment).

nameko's `@timer(interval=...)` fixes the interval when the class is defined, before
any config is read; this one reads `config[config_key]` when the container sets up, and
falls back to `interval`. Like nameko's, it waits for a tick's worker to finish before
the next tick, so a slow tick never overlaps itself.
"""
from __future__ import annotations

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    def __init__(self, config_key: str, interval: float, eager: bool = False, **kwargs):
        self.config_key = config_key
        super().__init__(interval, eager=eager, **kwargs)

    def setup(self) -> None:
        value = self.container.config.get(self.config_key)
        if value not in (None, ""):
            self.interval = float(value)
        if self.interval <= 0:
            raise ValueError(f"{self.config_key} must be a positive number of seconds")


configured_timer = ConfiguredTimer.decorator
