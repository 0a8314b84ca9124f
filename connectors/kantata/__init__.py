"""Kantata OX connector: the PSA port, the month-end PSA ports and the event feed on
Kantata's REST API (docs/connectors.md)."""

from __future__ import annotations

from connectors.kantata.client import KantataClient, KantataConfig
from connectors.kantata.events import KantataEvents
from connectors.kantata.extract import KantataExtract
from connectors.kantata.posting import KantataPosting
from connectors.kantata.psa import KantataPsa

__all__ = ["KantataClient", "KantataConfig", "KantataEvents", "KantataExtract", "KantataPosting", "KantataPsa"]
