"""Dynamics 365 Finance-shaped ERP simulator. Run: python -m simulators.dynamics."""

from .app import DynamicsSimulator, create_app
from .settings import DynamicsSettings

__all__ = ["DynamicsSettings", "DynamicsSimulator", "create_app"]
