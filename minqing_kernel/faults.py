"""Named fault points, so crash tests can stop a process exactly where it matters.

`MINQING_FAULT=<point>` makes `point(<point>)` announce itself (a line on stderr and the
file `MINQING_FAULT_MARKER`, if set) and then hang, so a test can SIGKILL the process at
that moment. Unset, a fault point costs one dict lookup.
"""
from __future__ import annotations

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
