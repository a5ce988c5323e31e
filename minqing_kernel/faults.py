"""Named fault points, so crash and fault tests can break a process where it matters.

`MINQING_FAULT=<point>` makes `point(<point>)` announce itself (a line on stderr and the
file `MINQING_FAULT_MARKER`, if set) and then hang, so a test can SIGKILL the process at
that moment. `MINQING_POISON=<consumer>:<marker>` makes that consumer fail on every
event whose data contains the marker (a poison message). Unset, each costs one lookup.
"""
from __future__ import annotations

import json
import os
import sys
import time


def point(name: str) -> None:
    if os.environ.get("MINQING_FAULT") != name:
        return
    marker = os.environ.get("MINQING_FAULT_MARKER")
    if marker:
        with open(marker, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {name}\n")
    print(f"fault point {name} reached in pid {os.getpid()}; hanging until killed",
          file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)  # green under nameko: only this worker waits to be killed


class Poisoned(RuntimeError):
    pass


def poison(consumer: str, events) -> None:
    spec = os.environ.get("MINQING_POISON")
    if not spec or not spec.startswith(f"{consumer}:"):
        return
    marker = spec.split(":", 1)[1]
    for event in events:
        if marker in json.dumps(event.data, ensure_ascii=False):
            raise Poisoned(f"{consumer} is poisoned by {marker!r} (event {event.id})")
