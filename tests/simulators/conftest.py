from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from simulators._settings import SimSettings
from tests.vendor_auth import netsuite_token_form

SF_V = "/services/data/v61.0"


def sf_settings(tmp_path: Path, **kw: object) -> SimSettings:
    base: dict[str, object] = {"db": str(tmp_path / "sf.sqlite"), "seed": "demo", "port": 8301}
    base.update(kw)
    return SimSettings(**base)  # type: ignore[arg-type]


@pytest.fixture
async def sf(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    from simulators.salesforce import create_app as create_sf

    app = create_sf(sf_settings(tmp_path, page_size=5))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sf.test") as c:
        r = await c.post(
            "/services/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"},
        )
        assert r.status_code == 200, r.text
        c.headers["authorization"] = "Bearer " + r.json()["access_token"]
        c.app = app  # type: ignore[attr-defined]
        yield c
    app.store.close()


@pytest.fixture
async def ns(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    from simulators.netsuite import create_app as create_ns

    app = create_ns(SimSettings(db=str(tmp_path / "ns.sqlite"), seed="demo", port=8302))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ns.test") as c:
        r = await c.post(
            "/services/rest/auth/oauth2/v1/token",
            data=netsuite_token_form("http://ns.test"),
        )
        assert r.status_code == 200, r.text
        c.headers["authorization"] = "Bearer " + r.json()["access_token"]
        c.app = app  # type: ignore[attr-defined]
        yield c
    app.store.close()
