"""Kantata OX-shaped PSA simulator. Run: python -m simulators.kantata (127.0.0.1:8304)."""

from .app import KantataSettings, KantataSimulator, create_app

__all__ = ["KantataSettings", "KantataSimulator", "create_app"]
