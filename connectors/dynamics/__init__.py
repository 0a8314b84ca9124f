"""Microsoft Dynamics 365 Finance: the ERP port, posting, receivables and extracts over OData."""

from connectors.dynamics.client import DynamicsClient, DynamicsConfig
from connectors.dynamics.erp import DynamicsErp
from connectors.dynamics.extract import DynamicsExtract
from connectors.dynamics.posting import DynamicsPosting
from connectors.dynamics.receivables import DynamicsReceivables

__all__ = [
    "DynamicsClient",
    "DynamicsConfig",
    "DynamicsErp",
    "DynamicsExtract",
    "DynamicsPosting",
    "DynamicsReceivables",
]
