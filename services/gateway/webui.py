"""The web UI (frontend/dist, built by `npm run build`) served at "/", with the single-page
app's fallback to index.html. It never shadows the API: /api, /v1, the docs, the schema and
the ops routes are not matched here at all, so their answers (404, 405…) are unchanged."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

log = logging.getLogger(__name__)

DEFAULT_DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"
RESERVED = ("/api", "/v1", "/docs", "/redoc", "/openapi.json", "/metrics", "/healthz", "/readyz")


def reserved(path: str) -> bool:
    """Whether a path belongs to the gateway itself (exactly, or anything below it)."""
    return any(path == p or path.startswith(p + "/") for p in RESERVED)


class SpaFiles(StaticFiles):
    """Static files; a path that does not look like a file (no dot in its last segment: "/",
    or a client-side route such as /chat/<id>) gets index.html. Hashed assets are
    cached for good, index.html never (it names the current assets)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path == "." or "." not in path.rsplit("/", 1)[-1]:
            return FileResponse(
                Path(str(self.directory)) / "index.html", headers={"Cache-Control": "no-cache"}
            )
        response = await super().get_response(path, scope)
        if path.startswith("assets/") and response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


class _WebUIMount(Mount):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] != "http"
            or scope.get("method") not in ("GET", "HEAD")
            or reserved(scope["path"])
        ):
            return Match.NONE, {}
        return super().matches(scope)


def mount_webui(app: FastAPI, dist: Path | None = None) -> bool:
    """Serve the built UI from `dist` (default: the repository's frontend/dist) if it has an
    index.html; returns whether it is served. Call it after every other route is added."""
    dist = dist or DEFAULT_DIST
    if not (dist / "index.html").is_file():
        log.info("web UI not served: no %s (build it with `npm run build` in frontend/)", dist)
        return False
    app.router.routes.append(_WebUIMount("/", app=SpaFiles(directory=dist), name="webui"))
    return True
