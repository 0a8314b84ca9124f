"""The sObjects of the simulated org: standard CRM objects and Certinia PSA (`pse__`)
objects, which the vendors ship, plus d2r's custom fields and objects, which come from
the SFDX source tree in vendor/salesforce (see package.py), so a field d2r writes but
the package lacks is refused here as a real org refuses it. Field types: id, str, bool,
num, date, datetime, ref:<Object>, pick:<v1|v2|...> (restricted picklist)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import package

STAGES = (
    "Prospecting",
    "Qualification",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
BILLING_MODELS = ("time_and_materials", "fixed_fee", "milestone", "retainer")
REVENUE_METHODS = ("as_delivered", "cost_to_cost", "milestone", "ratable")
TIMECARD_STATUSES = ("Saved", "Submitted", "Approved", "Rejected")
EXPENSE_STATUSES = ("Draft", "Submitted", "Approved", "Rejected")
TASK_PRIORITIES = ("High", "Normal", "Low")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")

_AUDIT = {
    "Id": "id",
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
    "SystemModstamp": "datetime",
    "IsDeleted": "bool",
    "CurrencyIsoCode": "str",
}
READONLY_ALWAYS = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted"}


@dataclass
class SObject:
    name: str
    prefix: str
    fields: dict[str, str]
    required: tuple[str, ...] = ()
    ext_ids: tuple[str, ...] = ()
    readonly: tuple[str, ...] = ()
    autonumber: str | None = None  # Name is an auto number with this prefix
    lower: dict[str, str] = field(default_factory=dict)
    rels: dict[str, str] = field(default_factory=dict)  # lower relationship name -> ref field
    lengths: dict[str, int] = field(default_factory=dict)  # text fields' maximum lengths
    unique: tuple[str, ...] = ()  # fields whose values no two records may share

    def __post_init__(self) -> None:
        self.fields = {**_AUDIT, **self.fields}
        self.lower = {k.lower(): k for k in self.fields}
        for f, t in self.fields.items():
            if t.startswith("ref:"):
                self.rels[relationship_name(f).lower()] = f

    def add_custom(self, f: package.CustomField) -> None:
        """A custom field from the package."""
        self.fields[f.name] = f.type
        self.lower[f.name.lower()] = f.name
        if f.type.startswith("ref:"):
            self.rels[relationship_name(f.name).lower()] = f.name
        if f.length is not None:
            self.lengths[f.name] = f.length
        if f.external_id:
            self.ext_ids = (*self.ext_ids, f.name)
        if f.unique:
            self.unique = (*self.unique, f.name)
        if f.required:
            self.required = (*self.required, f.name)

    def ref_target(self, f: str) -> str | None:
        t = self.fields.get(f, "")
        return t[4:] if t.startswith("ref:") else None


def relationship_name(ref_field: str) -> str:
    if ref_field.endswith("__c"):
        return ref_field[:-3] + "__r"
    if ref_field.endswith("Id"):
        return ref_field[:-2]
    return ref_field


def _pick(values: tuple[str, ...]) -> str:
    return "pick:" + "|".join(values)


OBJECTS: dict[str, SObject] = {}


def _add(o: SObject) -> None:
    OBJECTS[o.name] = o


_add(
    SObject(
        "Account",
        "001",
        {
            "Name": "str",
            "ParentId": "ref:Account",
            "BillingCountry": "str",
            "BillingCity": "str",
            "BillingStreet": "str",
            "BillingPostalCode": "str",
            "Industry": "str",
            "Type": "str",
            "Website": "str",
            "Phone": "str",
        },
        required=("Name",),
    )
)

_add(
    SObject(
        "Contact",
        "003",
        {
            "Name": "str",
            "FirstName": "str",
            "LastName": "str",
            "Email": "str",
            "Title": "str",
            "Phone": "str",
            "AccountId": "ref:Account",
            "pse__Is_Resource__c": "bool",
            "pse__Is_Resource_Active__c": "bool",
            "pse__Resource_Role__c": "str",
            "pse__Region__c": "ref:pse__Region__c",
            "pse__Default_Cost_Rate__c": "num",
        },
        required=("LastName",),
        readonly=("Name",),
    )
)

_add(
    SObject(
        "Product2",
        "01t",
        {
            "Name": "str",
            "ProductCode": "str",
            "Family": "str",
            "IsActive": "bool",
            "Description": "str",
        },
        required=("Name",),
    )
)

_add(
    SObject(
        "Opportunity",
        "006",
        {
            "Name": "str",
            "AccountId": "ref:Account",
            "StageName": _pick(STAGES),
            "IsClosed": "bool",
            "IsWon": "bool",
            "Amount": "num",
            "CloseDate": "date",
            "Type": "str",
            "Probability": "num",
            "Description": "str",
            "LeadSource": "str",
            "pse__Primary_Project__c": "ref:pse__Proj__c",
        },
        required=("Name", "StageName", "CloseDate"),
        readonly=("IsClosed", "IsWon"),
    )
)

_add(
    SObject(
        "OpportunityLineItem",
        "00k",
        {
            "OpportunityId": "ref:Opportunity",
            "Product2Id": "ref:Product2",
            "Name": "str",
            "Quantity": "num",
            "UnitPrice": "num",
            "TotalPrice": "num",
            "ListPrice": "num",
            "Description": "str",
            "ServiceDate": "date",
            "SortOrder": "num",
        },
        required=("OpportunityId", "Quantity"),
        readonly=("Name",),
    )
)

_add(
    SObject(
        "Task",
        "00T",
        {
            "Subject": "str",
            "Description": "str",
            "Priority": _pick(TASK_PRIORITIES),
            "Status": _pick(TASK_STATUSES),
            "WhatId": "ref:Opportunity",
            "WhoId": "ref:Contact",
            "ActivityDate": "date",
            "Type": "str",
            "IsClosed": "bool",
        },
        required=("Subject",),
        readonly=("IsClosed",),
    )
)

_add(
    SObject(
        "pse__Proj__c",
        "a0P",
        {
            "Name": "str",
            "pse__Account__c": "ref:Account",
            "pse__Opportunity__c": "ref:Opportunity",
            "pse__Project_Type__c": "str",
            "pse__Stage__c": "str",
            "pse__Project_Status__c": "str",
            "pse__Start_Date__c": "date",
            "pse__End_Date__c": "date",
            "pse__Is_Active__c": "bool",
            "pse__Is_Billable__c": "bool",
            "pse__Is_Template__c": "bool",
            "pse__Billing_Type__c": "str",
            "pse__Region__c": "ref:pse__Region__c",
            "pse__Practice__c": "ref:pse__Practice__c",
            "pse__Group__c": "ref:pse__Grp__c",
            "pse__Project_Manager__c": "ref:Contact",
            "pse__Parent_Project__c": "ref:pse__Proj__c",
            "pse__Project_Phase__c": "str",
            "pse__Recognition_Method__c": "str",
            "pse__Bookings__c": "num",
            "pse__Billings__c": "num",
            "pse__Planned_Hours__c": "num",
            "pse__Closed_for_Time_Entry__c": "bool",
            "pse__Closed_for_Expense_Entry__c": "bool",
            "pse__Exclude_From_Billing__c": "bool",
        },
        required=("Name",),
    )
)

_add(
    SObject(
        "pse__Milestone__c",
        "a0M",
        {
            "Name": "str",
            "pse__Project__c": "ref:pse__Proj__c",
            "pse__Target_Date__c": "date",
            "pse__Actual_Date__c": "date",
            "pse__Milestone_Amount__c": "num",
            "pse__Milestone_Cost__c": "num",
            "pse__Status__c": "str",
            "pse__Approved__c": "bool",
            "pse__Approved_for_Billing__c": "bool",
            "pse__Include_In_Financials__c": "bool",
            "pse__Billed__c": "bool",
            "pse__Invoiced__c": "bool",
            "pse__Description__c": "str",
        },
        required=("Name", "pse__Project__c"),
    )
)

_add(
    SObject(
        "pse__Assignment__c",
        "a0A",
        {
            "Name": "str",
            "pse__Project__c": "ref:pse__Proj__c",
            "pse__Resource__c": "ref:Contact",
            "pse__Resource_Request__c": "ref:pse__Resource_Request__c",
            "pse__Role__c": "str",
            "pse__Start_Date__c": "date",
            "pse__End_Date__c": "date",
            "pse__Bill_Rate__c": "num",
            "pse__Cost_Rate_Amount__c": "num",
            "pse__Rate_Card__c": "ref:pse__Rate_Card__c",
            "pse__Is_Billable__c": "bool",
            "pse__Percent_Allocated__c": "num",
            "pse__Planned_Hours__c": "num",
            "pse__Status__c": "str",
            "pse__Milestone__c": "ref:pse__Milestone__c",
        },
        required=("pse__Project__c", "pse__Resource__c"),
    )
)

_add(
    SObject(
        "pse__Resource_Request__c",
        "a0R",
        {
            "Name": "str",
            "pse__Project__c": "ref:pse__Proj__c",
            "pse__Opportunity__c": "ref:Opportunity",
            "pse__Resource_Role__c": "str",
            "pse__Start_Date__c": "date",
            "pse__End_Date__c": "date",
            "pse__SOW_Hours__c": "num",
            "pse__Requested_Bill_Rate__c": "num",
            "pse__Suggested_Bill_Rate__c": "num",
            "pse__Percent_Allocated__c": "num",
            "pse__Status__c": "str",
            "pse__Resource__c": "ref:Contact",
            "pse__Assignment__c": "ref:pse__Assignment__c",
            "pse__Region__c": "ref:pse__Region__c",
            "pse__Practice__c": "ref:pse__Practice__c",
        },
        required=("pse__Resource_Role__c",),
        readonly=("Name",),
        autonumber="RR-",
    )
)

_add(
    SObject(
        "pse__Timecard_Header__c",
        "a0T",
        {
            "Name": "str",
            "pse__Project__c": "ref:pse__Proj__c",
            "pse__Resource__c": "ref:Contact",
            "pse__Assignment__c": "ref:pse__Assignment__c",
            "pse__Milestone__c": "ref:pse__Milestone__c",
            "pse__Start_Date__c": "date",
            "pse__End_Date__c": "date",
            "pse__Monday_Hours__c": "num",
            "pse__Tuesday_Hours__c": "num",
            "pse__Wednesday_Hours__c": "num",
            "pse__Thursday_Hours__c": "num",
            "pse__Friday_Hours__c": "num",
            "pse__Saturday_Hours__c": "num",
            "pse__Sunday_Hours__c": "num",
            "pse__Total_Hours__c": "num",
            "pse__Status__c": _pick(TIMECARD_STATUSES),
            "pse__Submitted__c": "bool",
            "pse__Approved__c": "bool",
            "pse__Billable__c": "bool",
            "pse__Bill_Rate__c": "num",
            "pse__Cost_Rate_Amount__c": "num",
            "pse__Total_Billable_Amount__c": "num",
            "pse__Include_In_Financials__c": "bool",
            "pse__Billed__c": "bool",
            "pse__Invoiced__c": "bool",
        },
        required=("pse__Project__c", "pse__Resource__c", "pse__Start_Date__c", "pse__End_Date__c"),
        readonly=("Name",),
        autonumber="TC-",
    )
)

_add(
    SObject(
        "pse__Expense__c",
        "a0E",
        {
            "Name": "str",
            "pse__Project__c": "ref:pse__Proj__c",
            "pse__Resource__c": "ref:Contact",
            "pse__Assignment__c": "ref:pse__Assignment__c",
            "pse__Expense_Date__c": "date",
            "pse__Amount__c": "num",
            "pse__Type__c": "str",
            "pse__Description__c": "str",
            "pse__Status__c": _pick(EXPENSE_STATUSES),
            "pse__Approved__c": "bool",
            "pse__Billable__c": "bool",
            "pse__Billed__c": "bool",
            "pse__Invoiced__c": "bool",
            "pse__Include_In_Financials__c": "bool",
            "pse__Billing_Currency__c": "str",
        },
        required=("pse__Project__c", "pse__Resource__c", "pse__Expense_Date__c", "pse__Amount__c"),
        readonly=("Name",),
        autonumber="EX-",
    )
)

_add(
    SObject(
        "pse__Billing_Event__c",
        "a0B",
        {
            "Name": "str",
            "pse__Project__c": "ref:pse__Proj__c",
            "pse__Summary_Amount__c": "num",
            "pse__Status__c": "str",
            "pse__Date__c": "date",
            "pse__Is_Approved__c": "bool",
            "pse__Is_Released__c": "bool",
            "pse__Invoiced__c": "bool",
            "pse__Invoice_Number__c": "str",
            "pse__Invoice_Date__c": "date",
            "pse__Billing_Contact__c": "ref:Contact",
            "pse__Approver__c": "str",
            "pse__Event_Key__c": "str",
            "pse__Budget_Remaining__c": "num",
        },
        required=("pse__Project__c",),
        readonly=("Name",),
        autonumber="BE-",
    )
)

_add(
    SObject(
        "pse__Billing_Event_Item__c",
        "a0I",
        {
            "Name": "str",
            "pse__Billing_Event__c": "ref:pse__Billing_Event__c",
            "pse__Project__c": "ref:pse__Proj__c",
            "pse__Amount__c": "num",
            "pse__Category__c": "str",
            "pse__Object_Id__c": "str",
            "pse__Expense__c": "ref:pse__Expense__c",
        },
        required=("pse__Billing_Event__c",),
        readonly=("Name",),
        autonumber="BEI-",
    )
)

_add(
    SObject(
        "pse__Rate_Card__c",
        "a0C",
        {
            "Name": "str",
            "pse__Role__c": "str",
            "pse__Account__c": "ref:Account",
            "pse__Region__c": "ref:pse__Region__c",
            "pse__Practice__c": "ref:pse__Practice__c",
            "pse__Group__c": "ref:pse__Grp__c",
            "pse__Suggested_Bill_Rate__c": "num",
            "pse__Average_Cost_Rate__c": "num",
            "pse__Start_Date__c": "date",
            "pse__End_Date__c": "date",
        },
        required=("pse__Role__c",),
    )
)

# Certinia's organisation hierarchies: projects, resources and rate cards point at their
# records by lookup (the Group object is pse__Grp__c, its lookups are named pse__Group__c)
for _name, _prefix, _parent in (
    ("pse__Region__c", "a1R", "pse__Parent_Region__c"),
    ("pse__Practice__c", "a1P", "pse__Parent_Practice__c"),
    ("pse__Grp__c", "a1G", "pse__Parent_Group__c"),
):
    _add(
        SObject(
            _name,
            _prefix,
            {"Name": "str", _parent: f"ref:{_name}", "pse__Hierarchy_Depth__c": "num"},
            required=("Name",),
        )
    )

# custom objects' key prefixes are the org's to assign; these are the simulated org's
CUSTOM_OBJECT_PREFIXES = {"D2R_Service_Package__c": "a0S"}
for _custom in package.custom_objects():
    _add(SObject(_custom.name, CUSTOM_OBJECT_PREFIXES[_custom.name], {"Name": "str"}, required=("Name",)))
for _name, _fields in package.custom_fields().items():
    for _f in _fields:
        OBJECTS[_name].add_custom(_f)

LOWER_OBJECTS = {k.lower(): k for k in OBJECTS}
PREFIXES = {o.prefix: o.name for o in OBJECTS.values()}

# business keys for /__admin/duplicates: (object, SQL expression over `data`, label)
BUSINESS_KEYS: list[tuple[str, str, str]] = [
    (o.name, f"json_extract(data,'$.{ext}')", ext) for o in OBJECTS.values() for ext in o.ext_ids
] + [
    ("pse__Proj__c", "json_extract(data,'$.pse__Opportunity__c')", "pse__Opportunity__c"),
    ("Account", "json_extract(data,'$.Name')", "Name"),
    ("pse__Milestone__c",
     "json_extract(data,'$.pse__Project__c') || '/' || json_extract(data,'$.Name')",
     "pse__Project__c/Name"),
]  # fmt: skip

# expression indexes for the hot lookups (upsert keys, child-by-parent queries)
INDEXED_FIELDS = (
    "D2R_External_Id__c",
    "D2R_Customer_Key__c",
    "AccountId",
    "OpportunityId",
    "pse__Project__c",
    "pse__Opportunity__c",
)
# the Recycle Bin: deleted records (IsDeleted = true), which only queryAll and getDeleted see
RECYCLE_BIN = (
    "CREATE TABLE IF NOT EXISTS recycle_bin(seq INTEGER PRIMARY KEY, type TEXT NOT NULL, "
    "id TEXT NOT NULL UNIQUE, data TEXT NOT NULL, deleted TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS recycle_bin_deleted ON recycle_bin(type, deleted)",
)
EXTRA_INDEXES = (
    RECYCLE_BIN
    + tuple(f"DROP INDEX IF EXISTS ix_{f.lower()}" for f in INDEXED_FIELDS)
    + tuple(
        # partial indexes: a write only touches the indexes of the fields it has
        f"CREATE INDEX IF NOT EXISTS px_{f.lower()} ON records(type, json_extract(data,'$.{f}')) "
        f"WHERE json_extract(data,'$.{f}') IS NOT NULL"
        for f in INDEXED_FIELDS
    )
)

# child relationships usable in SOQL subqueries: (parent object, lower name) ->
# (relationship name, child object, reference field on the child)
_CHILDREN = [
    ("Account", "ChildAccounts", "Account", "ParentId"),
    ("Account", "Contacts", "Contact", "AccountId"),
    ("Account", "Opportunities", "Opportunity", "AccountId"),
    ("Opportunity", "OpportunityLineItems", "OpportunityLineItem", "OpportunityId"),
    ("Opportunity", "pse__Resource_Requests__r", "pse__Resource_Request__c", "pse__Opportunity__c"),
    ("Opportunity", "pse__Projects__r", "pse__Proj__c", "pse__Opportunity__c"),
    ("pse__Proj__c", "pse__Milestones__r", "pse__Milestone__c", "pse__Project__c"),
    ("pse__Proj__c", "pse__Assignments__r", "pse__Assignment__c", "pse__Project__c"),
    ("pse__Proj__c", "pse__Resource_Requests__r", "pse__Resource_Request__c", "pse__Project__c"),
    ("pse__Proj__c", "pse__Timecards__r", "pse__Timecard_Header__c", "pse__Project__c"),
    ("pse__Proj__c", "pse__Expenses__r", "pse__Expense__c", "pse__Project__c"),
    ("pse__Proj__c", "pse__Billing_Events__r", "pse__Billing_Event__c", "pse__Project__c"),
    ("pse__Billing_Event__c", "pse__Billing_Event_Items__r", "pse__Billing_Event_Item__c",
     "pse__Billing_Event__c"),
]  # fmt: skip
CHILD_RELS: dict[tuple[str, str], tuple[str, str, str]] = {
    (parent, name.lower()): (name, child, ref) for parent, name, child, ref in _CHILDREN
}

# master-detail relationships: deleting the parent deletes these children
MASTER_DETAIL: dict[str, tuple[tuple[str, str], ...]] = {
    "Opportunity": (("OpportunityLineItem", "OpportunityId"),),
    "pse__Proj__c": (("pse__Milestone__c", "pse__Project__c"),),
    "pse__Billing_Event__c": (("pse__Billing_Event_Item__c", "pse__Billing_Event__c"),),
}
