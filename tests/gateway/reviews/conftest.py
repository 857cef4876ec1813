"""Clinicians for the review tests: the case tests' fixture (created by an admin through the
API, signed in like patients, cookie + CSRF)."""

from __future__ import annotations

from tests.gateway.cases.conftest import new_clinician

__all__ = ["new_clinician"]
