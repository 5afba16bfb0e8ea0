"""`python -m refresher.worker.probe ready|live`: a Kubernetes exec probe for a worker.

Exit 0 when the worker's file (REFRESHER_READY_FILE or REFRESHER_LIVE_FILE, the same
environment as the worker's) exists and was touched within three health intervals (the
worker touches it every REFRESHER_HEALTH_INTERVAL seconds while it holds: see
refresher.worker.health); 1 otherwise, with the reason on stdout; 2 when asked wrongly.
A file gone stale means the worker's health thread stopped too: not ready, not live.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from refresher.worker.health import interval

FILES = {"ready": "REFRESHER_READY_FILE", "live": "REFRESHER_LIVE_FILE"}


def check(kind: str) -> tuple[int, str]:
    variable = FILES.get(kind)
    if variable is None:
        return 2, f"usage: python -m refresher.worker.probe {'|'.join(FILES)}"
    path = os.environ.get(variable, "").strip()
    if not path:
        return 2, f"{variable} is not set: set it for the worker and for the probe"
    try:
        age = time.time() - Path(path).stat().st_mtime
    except FileNotFoundError:
        return 1, f"not {kind}: {path} is missing (see the worker's log)"
    if age > 3 * interval():
        return 1, f"not {kind}: {path} was last touched {age:.0f}s ago"
    return 0, f"{kind}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    code, message = check(args[0] if len(args) == 1 else "")
    print(message)
    return code


if __name__ == "__main__":
    sys.exit(main())
