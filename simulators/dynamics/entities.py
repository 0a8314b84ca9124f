"""The data entities the D365 simulator serves, as OData entity sets.

Names follow the public OData collections of Dynamics 365 Finance (`CustomersV3`,
`SalesOrderHeadersV2`, `LedgerJournalHeaders`, ...). Fields named `D2R...` stand for the
entity extensions a firm deploys for the integration (real D365 rejects unknown
properties, so they are declared here like any other field). Posted documents (customer
transactions, settlements, ledger entries) are read-only, as in D365.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STRING, DECIMAL, INT, DATE, BOOL, ENUM = (
    "Edm.String",
    "Edm.Decimal",
    "Edm.Int32",
    "Edm.DateTimeOffset",
    "Edm.Boolean",
    "enum",
)
NAMESPACE = "Microsoft.Dynamics.DataEntities"
NO_DATE = "1900-01-01T12:00:00Z"  # D365's empty date


@dataclass(frozen=True)
class Prop:
    name: str
    type: str = STRING
    required: bool = False
    readonly: bool = False  # set by the server; a write is refused
    max_len: int | None = None
    enum: str | None = None  # enum type name, for ENUM props
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntitySet:
    name: str  # the public collection, used in URLs
    entity_type: str  # the public entity name (the OData type)
    keys: tuple[str, ...]
    props: dict[str, Prop]
    per_company: bool = True  # has dataAreaId; reads are scoped to one company
    number_key: str | None = None  # key filled from a number sequence when a create omits it
    number_format: str = "{n:06d}"
    writable: bool = True  # False: posted/derived data, read-only over OData
    deletable: bool = True
    actions: tuple[str, ...] = ()  # bound actions (POST <key>/Microsoft.Dynamics.DataEntities.<name>)
    parent: tuple[str, str] | None = None  # (field, entity set) the record belongs to
    line_number: str | None = None  # key field numbered per parent when omitted
    defaults: dict[str, object] = field(default_factory=dict)

    @property
    def qualified_type(self) -> str:
        return f"{NAMESPACE}.{self.entity_type}"


def _props(*props: Prop) -> dict[str, Prop]:
    return {"dataAreaId": Prop("dataAreaId", max_len=4), **{p.name: p for p in props}}


def _shared(*props: Prop) -> dict[str, Prop]:
    return {p.name: p for p in props}


REF = Prop("D2RReference", max_len=60)  # the d2r external id of the record
OPP = Prop("D2ROpportunityId", max_len=30)

ENUMS: dict[str, tuple[str, ...]] = {
    "SalesStatus": ("Backorder", "Delivered", "Invoiced", "Canceled"),
    "FiscalPeriodStatus": ("Open", "OnHold", "Closed", "PermanentlyClosed"),
    "LedgerJournalACType": ("Ledger", "Customer", "Vendor", "Project", "FixedAssets", "Bank"),
    "NoYes": ("No", "Yes"),
    "CustVendorType": ("Organization", "Person"),
    "ProjType": ("TimeMaterial", "FixedPrice", "Investment", "CostProject", "Internal", "Time"),
    "ProjStatus": ("Created", "Estimated", "Scheduled", "InProcess", "Completed"),
    "LedgerTransType": ("GeneralJournal", "Cust", "Payment", "Sales", "Project"),
    "CustTransType": ("Invoice", "Payment", "CreditNote", "GeneralJournal"),
    "ExchangeRateDisplayFactor": ("One", "Ten", "Hundred", "Thousand", "TenThousand"),
}


def enum(name: str, enum_type: str, **kw: object) -> Prop:
    return Prop(name, ENUM, enum=enum_type, choices=ENUMS[enum_type], **kw)  # type: ignore[arg-type]


ENTITY_SETS: dict[str, EntitySet] = {}


def _add(es: EntitySet) -> None:
    ENTITY_SETS[es.name] = es


_add(
    EntitySet(
        "LegalEntities",
        "LegalEntity",
        ("LegalEntityId",),
        _shared(
            Prop("LegalEntityId", required=True, max_len=4),
            Prop("Name", required=True, max_len=100),
            Prop("AddressCountryRegionId", max_len=10),
            Prop("AccountingCurrency", max_len=3),  # simplification: the ledger's currency
            Prop("TimeZone", max_len=60),
        ),
        per_company=False,
        writable=False,
    )
)
_add(
    EntitySet(
        "MainAccounts",
        "MainAccount",
        ("ChartOfAccounts", "MainAccountId"),
        _shared(
            Prop("ChartOfAccounts", required=True, max_len=60),
            Prop("MainAccountId", required=True, max_len=20),
            Prop("Name", max_len=60),
            Prop("MainAccountType", max_len=30),
        ),
        per_company=False,
        writable=False,
    )
)
_add(
    EntitySet(
        "ReleasedProductsV2",
        "ReleasedProductV2",
        ("dataAreaId", "ItemNumber"),
        _props(
            Prop("ItemNumber", required=True, max_len=20),
            Prop("ProductName", max_len=60),
            Prop("ProductType", max_len=20),
            Prop("ItemSalesTaxGroupCode", max_len=10),
            Prop("SalesUnitSymbol", max_len=10),
        ),
        writable=False,
    )
)
_add(
    EntitySet(
        "SalesTaxGroups",
        "SalesTaxGroup",
        ("dataAreaId", "TaxGroupCode"),
        _props(
            Prop("TaxGroupCode", required=True, max_len=10),
            Prop("Description", max_len=60),
            Prop("TaxRatePercent", DECIMAL, required=True),  # simplification: one rate per group
        ),
        deletable=False,
    )
)
_add(
    EntitySet(
        "CustomersV3",
        "CustomerV3",
        ("dataAreaId", "CustomerAccount"),
        _props(
            Prop("CustomerAccount", max_len=20),
            Prop("OrganizationName", required=True, max_len=100),
            Prop("CustomerGroupId", required=True, max_len=10),
            Prop("SalesCurrencyCode", required=True, max_len=3),
            Prop("PaymentTerms", max_len=10),
            enum("CustomerType", "CustVendorType"),
            Prop("AddressCountryRegionId", max_len=10),
            Prop("AddressCity", max_len=60),
            Prop("AddressStreet", max_len=250),
            Prop("AddressZipCode", max_len=10),
            Prop("PrimaryContactEmail", max_len=255),
            Prop("TaxExemptNumber", max_len=25),
            Prop("SalesTaxGroup", max_len=10),
            Prop("CreditLimit", DECIMAL),
            Prop("InvoiceAccount", max_len=20),
            REF,
            Prop("D2RCrmAccountId", max_len=30),
            Prop("D2RParentCustomerAccount", max_len=20),
            Prop("D2RCrmParentId", max_len=30),  # the CRM's parent account id (the hierarchy, as master data)
            Prop("D2RAgreed", max_len=1000),  # what d2r and the CRM last agreed (master-data sync)
        ),
        number_key="CustomerAccount",
        number_format="C{n:06d}",
        defaults={"CustomerType": "Organization", "CreditLimit": "0"},
    )
)
_add(
    EntitySet(
        "SalesOrderHeadersV2",
        "SalesOrderHeaderV2",
        ("dataAreaId", "SalesOrderNumber"),
        _props(
            Prop("SalesOrderNumber", max_len=20),
            Prop("OrderingCustomerAccountNumber", required=True, max_len=20),
            Prop("InvoiceCustomerAccountNumber", max_len=20),
            Prop("CurrencyCode", max_len=3),
            Prop("SalesOrderName", max_len=100),
            Prop("CustomersOrderReference", max_len=60),
            Prop("CustomerRequisitionNumber", max_len=20),
            Prop("RequestedShippingDate", DATE),
            Prop("PaymentTermsName", max_len=10),
            enum("SalesOrderStatus", "SalesStatus"),  # Canceled on request; Invoiced is computed
            Prop("OrderTotalAmount", DECIMAL, readonly=True),
            REF,
            OPP,
            Prop("D2RProjectId", max_len=30),
            Prop("D2RContractId", max_len=30),
        ),
        number_key="SalesOrderNumber",
        number_format="SO{n:06d}",
        defaults={"SalesOrderStatus": "Backorder"},
    )
)
_add(
    EntitySet(
        "SalesOrderLines",
        "SalesOrderLine",
        ("dataAreaId", "InventoryLotId"),
        _props(
            Prop("InventoryLotId", max_len=20),
            Prop("SalesOrderNumber", required=True, max_len=20),
            Prop("LineNumber", DECIMAL),
            Prop("ItemNumber", required=True, max_len=20),
            Prop("LineDescription", max_len=1000),
            Prop("OrderedSalesQuantity", DECIMAL, required=True),
            Prop("SalesPrice", DECIMAL),
            Prop("SalesUnitSymbol", max_len=10),
            Prop("LineAmount", DECIMAL, readonly=True),
            Prop("CurrencyCode", readonly=True, max_len=3),
            Prop("SalesTaxGroupCode", max_len=10),
            Prop("ItemSalesTaxGroupCode", max_len=10),
            Prop("RequestedShippingDate", DATE),
            enum("SalesOrderLineStatus", "SalesStatus", readonly=True),
            Prop("D2RContractLineId", max_len=40),
            REF,
        ),
        number_key="InventoryLotId",
        number_format="LOT{n:08d}",
        parent=("SalesOrderNumber", "SalesOrderHeadersV2"),
        defaults={"SalesOrderLineStatus": "Backorder", "SalesUnitSymbol": "ea"},
    )
)
_add(
    EntitySet(
        "FreeTextInvoiceHeaders",
        "FreeTextInvoiceHeader",
        ("dataAreaId", "FreeTextNumber"),
        _props(
            Prop("FreeTextNumber", max_len=20),
            Prop("CustomerAccount", required=True, max_len=20),
            Prop("InvoiceDate", DATE, required=True),
            Prop("DueDate", DATE),
            Prop("DocumentDate", DATE),
            Prop("CurrencyCode", max_len=3),
            Prop("PaymentTermsName", max_len=10),
            Prop("InvoiceId", readonly=True, max_len=20),  # the posted invoice number
            enum("IsPosted", "NoYes", readonly=True),
            Prop("TotalInvoiceAmount", DECIMAL, readonly=True),  # simplification: on the header
            Prop("TotalTaxAmount", DECIMAL, readonly=True),
            REF,
            OPP,
            Prop("D2RProjectId", max_len=30),
            Prop("D2RSalesOrderNumber", max_len=20),
            Prop("D2RBillingEventIds", max_len=1000),
            Prop("D2RPeriod", max_len=7),
            Prop("D2RSettleInvoiceId", max_len=20),  # a credit note settles this invoice on posting
        ),
        number_key="FreeTextNumber",
        number_format="FTI{n:06d}",
        actions=("post",),
        defaults={"IsPosted": "No"},
    )
)
_add(
    EntitySet(
        "FreeTextInvoiceLines",
        "FreeTextInvoiceLine",
        ("dataAreaId", "FreeTextNumber", "LineNumber"),
        _props(
            Prop("FreeTextNumber", required=True, max_len=20),
            Prop("LineNumber", DECIMAL),
            Prop("Description", max_len=1000),
            Prop("MainAccountDisplayValue", required=True, max_len=500),
            Prop("Quantity", DECIMAL),
            Prop("UnitPrice", DECIMAL),
            Prop("TransactionCurrencyAmount", DECIMAL),  # = Quantity x UnitPrice when omitted
            Prop("SalesTaxGroup", max_len=10),
            Prop("ItemSalesTaxGroup", max_len=10),
            Prop("TaxAmount", DECIMAL, readonly=True),
            Prop("D2RInvoiceLineId", max_len=60),
            Prop("D2RContractLineId", max_len=40),
            Prop("D2RBillingEventId", max_len=40),
            Prop("D2RKind", max_len=20),
        ),
        parent=("FreeTextNumber", "FreeTextInvoiceHeaders"),
        line_number="LineNumber",
    )
)
_add(
    EntitySet(
        "LedgerJournalHeaders",
        "LedgerJournalHeader",
        ("dataAreaId", "JournalBatchNumber"),
        _props(
            Prop("JournalBatchNumber", max_len=20),
            Prop("JournalName", required=True, max_len=10),
            Prop("Description", max_len=60),
            enum("IsPosted", "NoYes", readonly=True),
            REF,
            OPP,
            Prop("D2RProjectId", max_len=30),
            Prop("D2RPeriod", max_len=7),
            Prop("D2RReverses", max_len=60),
        ),
        number_key="JournalBatchNumber",
        number_format="JB{n:06d}",
        actions=("post",),
        defaults={"IsPosted": "No"},
    )
)
_add(
    EntitySet(
        "LedgerJournalLines",
        "LedgerJournalLine",
        ("dataAreaId", "JournalBatchNumber", "LineNumber"),
        _props(
            Prop("JournalBatchNumber", required=True, max_len=20),
            Prop("LineNumber", DECIMAL),
            Prop("TransDate", DATE, required=True),
            enum("AccountType", "LedgerJournalACType"),
            Prop("AccountDisplayValue", required=True, max_len=500),
            enum("OffsetAccountType", "LedgerJournalACType"),
            Prop("OffsetAccountDisplayValue", max_len=500),
            Prop("DebitAmount", DECIMAL),
            Prop("CreditAmount", DECIMAL),
            Prop("CurrencyCode", required=True, max_len=3),
            Prop("Text", max_len=60),
            Prop("Voucher", readonly=True, max_len=20),
            Prop("D2RMemo", max_len=1000),
            Prop("D2RProjectId", max_len=30),
            Prop("D2RSourceId", max_len=60),
        ),
        parent=("JournalBatchNumber", "LedgerJournalHeaders"),
        line_number="LineNumber",
        defaults={"AccountType": "Ledger", "DebitAmount": "0", "CreditAmount": "0"},
    )
)
_add(
    EntitySet(
        "CustomerPaymentJournalHeaders",
        "CustomerPaymentJournalHeader",
        ("dataAreaId", "JournalBatchNumber"),
        _props(
            Prop("JournalBatchNumber", max_len=20),
            Prop("JournalName", required=True, max_len=10),
            Prop("Description", max_len=60),
            enum("IsPosted", "NoYes", readonly=True),
            REF,
        ),
        number_key="JournalBatchNumber",
        number_format="PB{n:06d}",
        actions=("post",),
        defaults={"IsPosted": "No"},
    )
)
_add(
    EntitySet(
        "CustomerPaymentJournalLines",
        "CustomerPaymentJournalLine",
        ("dataAreaId", "JournalBatchNumber", "LineNumber"),
        _props(
            Prop("JournalBatchNumber", required=True, max_len=20),
            Prop("LineNumber", DECIMAL),
            Prop("TransactionDate", DATE, required=True),
            Prop("AccountDisplayValue", required=True, max_len=500),  # the customer account
            Prop("CreditAmount", DECIMAL, required=True),
            Prop("CurrencyCode", required=True, max_len=3),
            Prop("OffsetAccountDisplayValue", max_len=500),  # the bank (ledger) account
            Prop("MarkedInvoice", max_len=20),  # the invoice the payment settles
            Prop("PaymentReference", max_len=60),
            Prop("Voucher", readonly=True, max_len=20),
        ),
        parent=("JournalBatchNumber", "CustomerPaymentJournalHeaders"),
        line_number="LineNumber",
    )
)
_add(
    EntitySet(
        "CustomerTransactions",
        "CustomerTransaction",
        ("dataAreaId", "Voucher"),
        _props(
            Prop("Voucher", max_len=20),
            Prop("CustomerAccount", max_len=20),
            enum("TransactionType", "CustTransType"),
            Prop("Invoice", max_len=20),
            Prop("TransDate", DATE),
            Prop("DueDate", DATE),
            Prop("CurrencyCode", max_len=3),
            Prop("AmountCur", DECIMAL),
            Prop("SettleAmountCur", DECIMAL),
            Prop("RemainingAmountCur", DECIMAL),  # simplification: AmountCur - SettleAmountCur
            Prop("PaymentReference", max_len=60),
            REF,
            OPP,
        ),
        writable=False,
        deletable=False,
    )
)
_add(
    EntitySet(
        "CustomerSettlements",
        "CustomerSettlement",
        ("dataAreaId", "SettlementId"),
        _props(
            Prop("SettlementId", max_len=20),
            Prop("CustomerAccount", max_len=20),
            Prop("InvoiceId", max_len=20),
            Prop("InvoiceVoucher", max_len=20),
            Prop("OffsetVoucher", max_len=20),
            enum("OffsetTransactionType", "CustTransType"),
            Prop("SettledAmountCur", DECIMAL),
            Prop("CurrencyCode", max_len=3),
            Prop("SettlementDate", DATE),
            Prop("PaymentReference", max_len=60),
        ),
        writable=False,
        deletable=False,
    )
)
_add(
    EntitySet(
        "GeneralJournalAccountEntries",
        "GeneralJournalAccountEntry",
        ("dataAreaId", "EntryId"),
        _props(
            Prop("EntryId", max_len=20),
            Prop("Voucher", max_len=20),
            Prop("JournalNumber", max_len=20),
            Prop("AccountingDate", DATE),
            Prop("MainAccount", max_len=20),
            Prop("LedgerAccount", max_len=500),
            Prop("TransactionCurrencyCode", max_len=3),
            Prop("TransactionCurrencyAmount", DECIMAL),  # debit positive, credit negative
            enum("IsCredit", "NoYes"),
            enum("PostingType", "LedgerTransType"),
            Prop("Text", max_len=60),
            REF,
            OPP,
        ),
        writable=False,
        deletable=False,
    )
)
_add(
    EntitySet(
        "ProjectHourJournalLines",
        "ProjectHourJournalLine",
        ("dataAreaId", "TransId"),
        _props(
            Prop("TransId", max_len=20),
            Prop("Worker", required=True, max_len=25),  # the employee's PersonnelNumber
            Prop("TransDate", DATE, required=True),
            Prop("Hours", DECIMAL, required=True),
            enum("IsBillable", "NoYes"),
            Prop("Text", max_len=1000),
            Prop("ProjectID", max_len=20),
            REF,
            OPP,
            Prop("D2RProjectId", max_len=30),
            Prop("D2REntryId", max_len=60),
        ),
        number_key="TransId",
        number_format="HRS{n:08d}",
        deletable=False,
    )
)
_add(
    EntitySet(
        "Projects",
        "Project",
        ("dataAreaId", "ProjectID"),
        _props(
            Prop("ProjectID", max_len=20),
            Prop("ProjectName", required=True, max_len=60),
            enum("ProjectType", "ProjType"),
            enum("ProjectStage", "ProjStatus"),
            Prop("CustomerAccount", max_len=20),
            Prop("ProjectContractID", max_len=20),
            Prop("StartDate", DATE),
            Prop("EndDate", DATE),
            REF,
            OPP,
        ),
        number_key="ProjectID",
        number_format="PRJ{n:06d}",
        defaults={"ProjectType": "TimeMaterial", "ProjectStage": "Created"},
    )
)
_add(
    EntitySet(
        "Employees",
        "Employee",
        ("PersonnelNumber",),
        _shared(
            Prop("PersonnelNumber", max_len=25),
            Prop("Name", max_len=100),
            Prop("FirstName", max_len=25),
            Prop("LastName", max_len=25),
            Prop("PrimaryContactEmail", max_len=255),
            Prop("EmploymentLegalEntityId", max_len=4),
            Prop("EmploymentStartDate", DATE),
            Prop("D2RReference", max_len=60),
            Prop("D2RRole", max_len=60),
        ),
        per_company=False,
        number_key="PersonnelNumber",
        number_format="{n:06d}",
    )
)
_add(
    EntitySet(
        "LedgerFiscalPeriods",
        "LedgerFiscalPeriod",
        ("LedgerName", "Calendar", "YearName", "PeriodName"),
        _shared(
            Prop("LedgerName", required=True, max_len=4),  # the legal entity
            Prop("Calendar", required=True, max_len=10),
            Prop("YearName", required=True, max_len=10),
            Prop("PeriodName", required=True, max_len=60),
            Prop("StartDate", DATE, readonly=True),  # simplification: joined from the calendar
            Prop("EndDate", DATE, readonly=True),
            enum("PeriodStatus", "FiscalPeriodStatus"),
        ),
        per_company=False,
        deletable=False,
    )
)
_add(
    EntitySet(
        "ExchangeRates",  # ExchangeRateEntity: ConversionFactor units of From buy Rate units of To
        "ExchangeRate",
        ("RateTypeName", "FromCurrency", "ToCurrency", "StartDate"),
        _shared(
            Prop("RateTypeName", required=True, max_len=20),
            Prop("FromCurrency", required=True, max_len=3),
            Prop("ToCurrency", required=True, max_len=3),
            Prop("StartDate", DATE, required=True),
            Prop("EndDate", DATE),
            Prop("Rate", DECIMAL, required=True),
            enum("ConversionFactor", "ExchangeRateDisplayFactor"),
            Prop("RateTypeDescription", max_len=60),
        ),
        per_company=False,
        defaults={"ConversionFactor": "One"},
    )
)

# Reads are answered from the record's own fields; posted entities only change through actions.
BUSINESS_KEYS: list[tuple[str, str, str]] = [
    (name, "json_extract(data,'$.dataAreaId') || '|' || json_extract(data,'$.D2RReference')", "D2RReference")
    for name, es in ENTITY_SETS.items()
    if "D2RReference" in es.props and es.per_company and es.writable and es.line_number is None
] + [
    ("SalesOrderHeadersV2", "json_extract(data,'$.dataAreaId') || '|' || json_extract(data,'$.D2ROpportunityId')",
     "D2ROpportunityId"),
]  # fmt: skip
