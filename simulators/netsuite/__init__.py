"""NetSuite-shaped ERP simulator. Run: python -m simulators.netsuite --instance NAME."""

from .app import NetSuiteSimulator, create_app

__all__ = ["NetSuiteSimulator", "create_app"]
