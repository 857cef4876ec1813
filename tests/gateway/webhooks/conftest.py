from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.webhooks import webhooks_of


@pytest.fixture
def new_webhook(admin: httpx.Client) -> Iterator[Callable[[str], dict[str, Any]]]:
    """Webhooks registered for one test, disabled when it ends."""
    with webhooks_of(admin) as make:
        yield make
