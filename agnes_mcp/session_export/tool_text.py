"""The text block of the ``session_export`` tool's answer."""

from __future__ import annotations

from agnes_mcp.mcp_server.tool_models import SessionExportOutput


def export_text(out: SessionExportOutput) -> str:
    what = f"session {out.session}" if out.session else "the window"
    counts = f"{out.steps} steps ({out.ran} run as code, {out.refused} refused"
    counts += f", {out.not_replayable} not replayable)" if out.not_replayable else ")"
    if out.found > out.steps:
        counts += f"; the first {out.steps} of {out.found}: narrow the window for the rest"
    where = (
        f"written to {out.path}"
        if out.path
        else f"download it with a personal access token: GET {out.download_url}"
    )
    lines = [f"Notebook of {what}: {counts}; {where}."]
    lines += [f"note: {n}" for n in out.notes]
    return "\n".join(lines)
