"""The server process's memory ceiling: the last wall for memory no query limit counts.

DuckDB's ``memory_limit`` bounds its buffers, and the value guards bound what one
function call may build (:mod:`agnes_mcp.rails.value_guards`), but values grown by
composing other functions — ``s || s`` folded by ``list_reduce``, encoders such as
``bin``/``hex`` nested in each other, a chain of CTEs each doubling a string — are
allocated inside one vector, outside any count DuckDB keeps. Unchecked, one such query
grows the server until the kernel kills it, and every user's session with it.

So the server caps its own data segment (``RLIMIT_DATA``: the heap and private writable
mappings). An allocation past it fails: DuckDB ends that query with its out-of-memory
error (``memory_limit_exceeded`` to the caller) and gives the memory back, and the
server keeps serving. The ceiling counts reserved address space too (thread stacks,
allocator arenas: ~1.5 to 2.5 GiB over the resident size on the reference machine), so
it must sit well above what the server uses: by default 80% of the machine's memory
(the smaller of the physical memory and the cgroup's limit), never below
:data:`FLOOR_BYTES` — on a smaller machine it would fail ordinary work before it
could save anything.
"""

from __future__ import annotations

import os
import re
import resource
from pathlib import Path

FLOOR_BYTES = 8 * 1024**3
SHARE = 0.8
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
PATTERN = r"^(auto|off|\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB))$"
CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def machine_memory(cgroup_limits: tuple[Path, ...] = CGROUP_LIMITS) -> int:
    """Bytes of memory this process's machine (or container) has."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in cgroup_limits:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            physical = min(physical, int(text))
    return physical


def ceiling_bytes(setting: str, machine: int | None = None) -> int | None:
    """The ceiling ``setting`` asks for (``auto``, ``off`` or a size such as ``12GiB``),
    in bytes; None for off."""
    text = setting.strip()
    if text.lower() == "off":
        return None
    if text.lower() == "auto":
        total = machine_memory() if machine is None else machine
        return max(int(total * SHARE), FLOOR_BYTES)
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text)
    if found is None or found[2].upper() not in _UNITS:
        raise ValueError(f"Not a memory size: {setting!r} (e.g. 'auto', 'off', '12GiB').")
    return int(float(found[1]) * _UNITS[found[2].upper()])


def apply(setting: str) -> int | None:
    """Cap this process's data segment as ``setting`` says; the ceiling set (None: off).
    A hard limit already lower (set by the operator's service manager) is kept."""
    wanted = ceiling_bytes(setting)
    if wanted is None:
        return None
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (wanted, hard))
    return wanted
