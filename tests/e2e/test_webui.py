"""services/gateway/webui.py without a browser: the built UI is served at "/" with the
single-page fallback, and never answers for the gateway's own paths (no marker: these run
in the default suite)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.errors import install_error_handlers
from services.gateway.webui import mount_webui, reserved


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "index-abc.js").write_text("console.log(1)")
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/auth/me")
    async def me() -> dict[str, str]:
        return {"id": "x"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    assert mount_webui(app, tmp_path)
    return TestClient(app)


@pytest.mark.parametrize("path", ["/", "/chat", "/chat/0b7c6a3e-1f9d-4f1e-9e51-2f6f1c1d9a10"])
def test_client_routes_get_index_html(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and "id=root" in r.text
    assert r.headers["cache-control"] == "no-cache"


def test_assets_are_served_and_cached(client: TestClient) -> None:
    r = client.get("/assets/index-abc.js")
    assert r.status_code == 200 and r.text == "console.log(1)"
    assert "immutable" in r.headers["cache-control"]
    assert client.get("/assets/missing.js").status_code == 404


def test_gateway_paths_are_never_shadowed(client: TestClient) -> None:
    assert client.get("/api/auth/me").json() == {"id": "x"}
    assert client.get("/healthz").json() == {"status": "ok"}
    for path in ("/api/nope", "/v1/nope", "/api", "/metrics", "/readyz"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "id=root" not in r.text
    assert client.post("/api/auth/me").status_code == 405  # unchanged: not the UI's 404
    assert client.post("/chat").status_code in (404, 405)


def test_reserved_prefixes() -> None:
    assert reserved("/api") and reserved("/api/sessions") and reserved("/openapi.json")
    assert reserved("/docs") and reserved("/docs/oauth2-redirect") and reserved("/v1/models")
    assert not reserved("/apiary") and not reserved("/chat") and not reserved("/")


def test_nothing_mounted_without_a_build(tmp_path: Path) -> None:
    app = FastAPI()
    assert not mount_webui(app, tmp_path / "missing")
    assert TestClient(app).get("/").status_code == 404
