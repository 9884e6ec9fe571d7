"""``agnes`` with cProfile on the event loop's thread, switched by signals: SIGUSR1 starts
(or restarts) it, SIGUSR2 writes the pstats to ``BENCH_PROFILE_OUT`` and stops it.

    BENCH_PROFILE_OUT=/tmp/loop.pstats python benchmarks/profiled_serve.py demo --port 0

cProfile sees only the thread that enabled it, here the main thread, which runs the event
loop: the Python work every request shares (routing, the MCP session, FastMCP's dispatch,
JSON), the part that one GIL serialises. Work on worker threads (queries on the query
lane, sync tools) is not in it. ``bench_fleet.py --profile OUT`` drives it.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = os.environ.get("BENCH_PROFILE_OUT", "agnes-loop.pstats")
_profile: cProfile.Profile | None = None


def _start(signum: int, frame: FrameType | None) -> None:
    global _profile
    if _profile is not None:
        _profile.disable()
    _profile = cProfile.Profile()
    _profile.enable()


def _dump(signum: int, frame: FrameType | None) -> None:
    global _profile
    if _profile is not None:
        _profile.disable()
        _profile.dump_stats(OUT)
        _profile = None
        Path(OUT + ".done").write_text("1")


if __name__ == "__main__":
    from cli.main import main

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
    sys.argv = ["agnes", *sys.argv[1:]]
    sys.exit(main())
