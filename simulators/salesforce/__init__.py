"""Salesforce-shaped CRM + Certinia PSA simulator. Run: python -m simulators.salesforce."""

from .app import SalesforceSimulator, create_app

__all__ = ["SalesforceSimulator", "create_app"]
