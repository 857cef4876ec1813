"""The login cookies: the session token (HttpOnly) and its CSRF twin, which our pages read
and echo in the X-CSRF-Token header (double submit)."""

from __future__ import annotations

from fastapi import Response

from services.gateway.config import GatewaySettings

CSRF_COOKIE = "medchat_csrf"


def set_login_cookies(response: Response, settings: GatewaySettings, token: str, csrf: str) -> None:
    common = {
        "max_age": settings.login_ttl_s,
        "secure": settings.is_production,
        "samesite": "lax",
        "path": "/",
    }
    response.set_cookie(settings.cookie_name, token, httponly=True, **common)  # type: ignore[arg-type]
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)  # type: ignore[arg-type]


def clear_login_cookies(response: Response, settings: GatewaySettings) -> None:
    response.delete_cookie(settings.cookie_name, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
