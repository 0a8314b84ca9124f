"""/docs and /redoc work offline: every script, stylesheet and image they reference is a
local path the API itself serves (from the installed fastapi-offline package), never a CDN."""

from __future__ import annotations

import re

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings

# src= and href= of the page: what a browser fetches before it can draw anything.
ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""")
# URLs inside the inline script (swagger-ui-bundle's `url: '/openapi.json'`).
INLINE_URL = re.compile(r"""url\s*:\s*["']([^"']+)["']""")


def client() -> httpx.AsyncClient:
    app = create_app(ApiSettings(profile="dev", static_tokens=True), temporal=object())  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize(("page", "expected"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
async def test_docs_page_references_only_local_assets_that_are_served(page: str, expected: str) -> None:
    async with client() as http:
        response = await http.get(page)
        assert response.status_code == 200
        html = response.text
        urls = ASSET.findall(html) + INLINE_URL.findall(html)
        assert any(url.endswith(expected) for url in urls), urls
        assert "cdn" not in html.lower() and "fonts.googleapis" not in html
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), f"{page} references {url}"
            asset = await http.get(url)
            assert asset.status_code == 200, f"{url}: {asset.status_code}"
            assert asset.content, url
