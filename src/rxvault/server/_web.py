"""The portal's static files (built into ``rxvault/web/`` by the front-end build).

When the built assets are missing, every page answers 503 with a plain explanation instead of
a broken page; the API keeps working.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

MISSING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rxvault: portal not installed</title></head>
<body><h1>The patient portal is not installed</h1>
<p>This server's API is running, but the portal's web files were not found in
<code>{root}</code>. Build them (see docs/operations.md) or set <code>web_root</code>.</p>
</body></html>
"""


def default_web_root() -> Path:
    return Path(__file__).resolve().parent.parent / "web"


def _root(request: Request) -> Path:
    root: Path | None = request.app.state.rxvault.settings.web_root
    return root if root is not None else default_web_root()


@router.get("/{path:path}")
def static_file(path: str, request: Request) -> Response:
    root = _root(request).resolve()
    index = root / "index.html"
    if not index.is_file():
        return HTMLResponse(MISSING_PAGE.format(root=root), status_code=503)
    candidate = (root / path).resolve() if path else index
    if not candidate.is_relative_to(root) or not candidate.is_file():
        # Unknown paths get the portal's page: the portal routes on the client side.
        candidate = index
    media_type = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
    if candidate.suffix == ".wasm":
        media_type = "application/wasm"
    cache = "no-cache" if candidate.suffix == ".html" else "public, max-age=3600"
    return Response(candidate.read_bytes(), media_type=media_type, headers={"Cache-Control": cache})
