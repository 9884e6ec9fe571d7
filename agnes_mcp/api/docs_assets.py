"""The browsable API docs (Swagger UI at ``/api/docs``), with their assets served from here.

FastAPI's default docs page loads Swagger UI's JavaScript, CSS and icon from a CDN, so it
is blank on a machine without internet access. The same files ship in the
``fastapi-swagger`` package (Swagger UI's dist build, kept current with Swagger UI's
releases); they are served under ``/api/docs/static/`` and the page points at them. Like
the page and the OpenAPI document, they need no token; the Host/Origin guard covers them
as it covers every route.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/api/docs"
ASSETS_PATH = "/api/docs/static"
SCRIPT = "swagger-ui-bundle.js"
STYLESHEET = "swagger-ui.css"
ICON = "favicon-32x32.png"


def swagger_ui_dir() -> Path:
    """The folder holding Swagger UI's files, as installed with ``fastapi-swagger``."""
    folder = Path(str(resources.files("fastapi_swagger").joinpath("resources")))
    missing = [name for name in (SCRIPT, STYLESHEET, ICON) if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(
            f"Swagger UI files {missing} are not in {folder}; reinstall 'fastapi-swagger'."
        )
    return folder


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve Swagger UI at :data:`DOCS_PATH` for the document at ``openapi_url``."""
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_dir()), name="swagger-ui")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/{SCRIPT}",
            swagger_css_url=f"{root}{ASSETS_PATH}/{STYLESHEET}",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/{ICON}",
            # Swagger UI would otherwise load a validator badge from another site.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers.update(_page_headers(bytes(page.body).decode()))
        return page


def _page_headers(html: str) -> dict[str, str]:
    """The docs page's own protection, as the admin pages have: scripts only from this
    server or the page's own inline start-up script (by its hash), nothing framed."""
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
        for code in inline
    )
    policy = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
