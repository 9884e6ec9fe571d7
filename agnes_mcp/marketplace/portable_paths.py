"""File names every analyst's machine can check out.

A feed is one git repository that Claude Code clones on the analyst's machine. A name
Windows cannot hold (a device name such as ``aux.md``, a ``:`` or ``?``, a trailing dot
or space, which Windows drops), or two paths differing only in case (one overwrites the
other on Windows and macOS) or in how an accent is encoded (the same, on macOS), breaks
that checkout for everyone the feed goes to, not only for the plugin that holds it. Such
a commit is refused, naming the file.
"""

from __future__ import annotations

import unicodedata

_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)
_FORBIDDEN = frozenset('<>:"|?*\\')


def unportable(path: str) -> str | None:
    """Why ``path`` (``/``-separated) cannot be checked out everywhere, or None."""
    for part in path.split("/"):
        if "\\" in part:
            return (
                f"'{part}' holds a backslash: on Windows it separates folders, and a ZIP tool "
                "may write the file outside the plugin's folder ('..\\..\\x')"
            )
        bad = sorted({ch for ch in part if ch in _FORBIDDEN or ord(ch) < 32})
        if bad:
            shown = " ".join(repr(ch) for ch in bad)
            return f"'{part}' holds {shown}, which Windows does not allow in a file name"
        if part.endswith((".", " ")):
            return f"'{part}' ends in a dot or a space, which Windows drops"
        device = part.split(".")[0].rstrip(" ").lower()
        if device in _DEVICES:
            return f"'{part}' is the device name {device.upper()} on Windows"
    return None


def case_clash(paths: list[str]) -> tuple[str, str] | None:
    """Two of ``paths`` that differ only in case, or in how an accent is encoded (``é``
    as one character or as ``e`` + a combining accent: macOS's file system takes both
    for one name, as git there does), the first such pair; or None."""
    seen: dict[str, str] = {}
    for path in paths:
        folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())
        if folded in seen:
            return seen[folded], path
        seen[folded] = path
    return None
