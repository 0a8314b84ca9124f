"""The dev issuer's public half, served by the API in `make run`: what a real IdP serves
at its issuer URL (discovery document, JWKS). Mounted only in the dev profile when
`D2R_DEV_ISSUER_KEY_FILE` is set; tokens are minted by `d2r token`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from security import dev_issuer

PREFIX = "/dev-issuer"


def mount(app: FastAPI, key_file: Path, issuer: str) -> None:
    router = APIRouter(prefix=PREFIX, tags=["dev issuer"], include_in_schema=False)

    @router.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return dev_issuer.discovery(issuer)

    @router.get("/jwks.json")
    async def jwks() -> dict[str, Any]:
        return dev_issuer.jwks(key_file)

    app.include_router(router)
