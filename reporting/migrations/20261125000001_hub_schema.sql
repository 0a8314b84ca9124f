-- migrate:up

-- ---------------------------------------------------------------- settings and currency
CREATE TABLE hub_setting (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO hub_setting (key, value) VALUES ('reporting_currency', 'USD');

CREATE TABLE dim_currency (
    currency   char(3) PRIMARY KEY CHECK (currency ~ '^[A-Z]{3}$'),
    minor_unit smallint NOT NULL CHECK (minor_unit BETWEEN 0 AND 4),
    name       text
);
INSERT INTO dim_currency (currency, minor_unit) VALUES
    ('USD',2),('EUR',2),('GBP',2),('CHF',2),('CAD',2),('AUD',2),('SEK',2),('NOK',2),
    ('DKK',2),('PLN',2),('INR',2),('SGD',2),('HKD',2),('CNY',2),('BRL',2),('MXN',2),
    ('ZAR',2),('NZD',2),('JPY',0),('KRW',0),('CLP',0),('ISK',0),('KWD',3),('BHD',3),
    ('OMR',3),('JOD',3),('TND',3);

-- One rate per currency pair and day; a conversion uses the latest rate on or before the
-- fact's FX date (the rate and the date used are stored on the fact).
CREATE TABLE fx_rate (
    from_currency char(3) NOT NULL REFERENCES dim_currency,
    to_currency   char(3) NOT NULL REFERENCES dim_currency,
    rate_date     date NOT NULL,
    rate          numeric(20, 10) NOT NULL CHECK (rate > 0),
    source_system text NOT NULL DEFAULT 'erp',
    PRIMARY KEY (from_currency, to_currency, rate_date)
);

CREATE FUNCTION hub_fx_rate(p_from char(3), p_to char(3), p_on date)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
DECLARE r numeric;
BEGIN
    IF p_from = p_to THEN RETURN 1; END IF;
    SELECT rate INTO r FROM fx_rate
     WHERE from_currency = p_from AND to_currency = p_to AND rate_date <= p_on
     ORDER BY rate_date DESC LIMIT 1;
    IF r IS NOT NULL THEN RETURN r; END IF;
    SELECT 1 / rate INTO r FROM fx_rate
     WHERE from_currency = p_to AND to_currency = p_from AND rate_date <= p_on
     ORDER BY rate_date DESC LIMIT 1;
    IF r IS NOT NULL THEN RETURN r; END IF;
    RAISE EXCEPTION 'no FX rate % -> % on or before %', p_from, p_to, p_on
        USING ERRCODE = 'D2R01';
END $$;

-- ---------------------------------------------------------------- conformed dimensions
CREATE TABLE dim_date (
    date_key   date PRIMARY KEY,
    period     char(7) NOT NULL,          -- YYYY-MM
    year       smallint NOT NULL,
    quarter    smallint NOT NULL,
    month      smallint NOT NULL,
    is_workday boolean NOT NULL
);
INSERT INTO dim_date
SELECT d::date, to_char(d, 'YYYY-MM'), extract(year FROM d), extract(quarter FROM d),
       extract(month FROM d), extract(isodow FROM d) < 6
  FROM generate_series(date '2015-01-01', date '2040-12-31', interval '1 day') AS d;
CREATE INDEX dim_date_workday ON dim_date (date_key) WHERE is_workday;

CREATE TABLE dim_geography (
    geography text PRIMARY KEY,           -- e.g. ISO country code or delivery region
    name      text,
    region    text
);

CREATE TABLE dim_service_line (
    service_line text PRIMARY KEY,
    name         text
);

CREATE TABLE dim_service_offering (
    service_offering text PRIMARY KEY,    -- service package code
    service_line     text NOT NULL,
    name             text
);

CREATE TABLE dim_legal_entity (
    legal_entity        text PRIMARY KEY,
    name                text,
    functional_currency char(3) NOT NULL REFERENCES dim_currency,
    geography           text,
    tax_jurisdiction    text,
    erp_instance        text
);

CREATE TABLE dim_customer (
    customer_id        text PRIMARY KEY,  -- CRM account id (lineage key)
    name               text,
    parent_customer_id text,              -- hierarchy; the root has none
    geography          text,
    erp_customer_id    text,
    source_system      text NOT NULL DEFAULT 'crm',
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dim_customer_parent ON dim_customer (parent_customer_id);

-- Every customer with each of its ancestors (itself at depth 0).
CREATE VIEW v_customer_ancestry AS
WITH RECURSIVE walk(customer_id, ancestor_id, depth, path) AS (
    SELECT customer_id, customer_id, 0, ARRAY[customer_id] FROM dim_customer
    UNION ALL
    SELECT w.customer_id, c.parent_customer_id, w.depth + 1, w.path || c.parent_customer_id
      FROM walk w JOIN dim_customer c ON c.customer_id = w.ancestor_id
     WHERE c.parent_customer_id IS NOT NULL AND NOT c.parent_customer_id = ANY (w.path)
)
SELECT customer_id, ancestor_id, depth FROM walk;

CREATE TABLE dim_project (
    project_id       text PRIMARY KEY,     -- PSA project id (lineage key)
    name             text,
    customer_id      text,
    opportunity_id   text,
    contract_id      text,
    legal_entity     text,
    service_offering text,
    service_line     text,
    geography        text,
    currency         char(3),
    billing_model    text,
    status           text,
    source_system    text NOT NULL DEFAULT 'psa',
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dim_project_customer ON dim_project (customer_id);

CREATE TABLE dim_consultant (
    consultant_id          text PRIMARY KEY,  -- PSA resource id
    name                   text,
    home_legal_entity      text,
    service_line           text,
    geography              text,
    capacity_hours_per_day numeric(5, 2) NOT NULL DEFAULT 8,
    active_from            date NOT NULL DEFAULT date '2015-01-01',
    active_to              date,
    source_system          text NOT NULL DEFAULT 'psa',
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- facts
-- Common to every fact: the source record (natural key, so reloads upsert), the lineage
-- keys, the transaction currency, and the functional and reporting conversions with the
-- FX date and rates used. Money is numeric, never float.
CREATE TABLE fact_booking (
    source_system text NOT NULL, source_record_id text NOT NULL,
    opportunity_id text, customer_id text NOT NULL, project_id text, contract_id text,
    legal_entity text NOT NULL,
    contract_line_id text, service_offering text, billing_model text,
    booking_date date NOT NULL,
    amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL, functional_currency char(3) NOT NULL, reporting_currency char(3) NOT NULL,
    fx_date date NOT NULL, fx_rate_functional numeric(20, 10) NOT NULL, fx_rate_reporting numeric(20, 10) NOT NULL,
    functional_amount numeric(24, 6) NOT NULL, reporting_amount numeric(24, 6) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, source_record_id)
);
CREATE INDEX fact_booking_date ON fact_booking (booking_date);
CREATE INDEX fact_booking_project ON fact_booking (project_id);

CREATE TABLE fact_time (
    source_system text NOT NULL, source_record_id text NOT NULL,
    opportunity_id text, customer_id text NOT NULL, project_id text NOT NULL, contract_id text,
    legal_entity text NOT NULL,
    consultant_id text NOT NULL, work_date date NOT NULL,
    hours numeric(8, 2) NOT NULL, billable boolean NOT NULL,
    bill_amount numeric(20, 4) NOT NULL, cost_amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL, functional_currency char(3) NOT NULL, reporting_currency char(3) NOT NULL,
    fx_date date NOT NULL, fx_rate_functional numeric(20, 10) NOT NULL, fx_rate_reporting numeric(20, 10) NOT NULL,
    functional_bill_amount numeric(24, 6) NOT NULL, reporting_bill_amount numeric(24, 6) NOT NULL,
    functional_cost_amount numeric(24, 6) NOT NULL, reporting_cost_amount numeric(24, 6) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, source_record_id)
);
CREATE INDEX fact_time_date ON fact_time (work_date);
CREATE INDEX fact_time_project_date ON fact_time (project_id, work_date);

CREATE TABLE fact_expense (
    source_system text NOT NULL, source_record_id text NOT NULL,
    opportunity_id text, customer_id text NOT NULL, project_id text NOT NULL, contract_id text,
    legal_entity text NOT NULL,
    consultant_id text, expense_date date NOT NULL, category text, billable boolean NOT NULL,
    amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL, functional_currency char(3) NOT NULL, reporting_currency char(3) NOT NULL,
    fx_date date NOT NULL, fx_rate_functional numeric(20, 10) NOT NULL, fx_rate_reporting numeric(20, 10) NOT NULL,
    functional_amount numeric(24, 6) NOT NULL, reporting_amount numeric(24, 6) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, source_record_id)
);
CREATE INDEX fact_expense_date ON fact_expense (expense_date);

CREATE TABLE fact_billing_event (
    source_system text NOT NULL, source_record_id text NOT NULL,
    opportunity_id text, customer_id text NOT NULL, project_id text, contract_id text,
    legal_entity text NOT NULL,
    event_date date NOT NULL, event_type text, status text, invoice_id text,
    amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL, functional_currency char(3) NOT NULL, reporting_currency char(3) NOT NULL,
    fx_date date NOT NULL, fx_rate_functional numeric(20, 10) NOT NULL, fx_rate_reporting numeric(20, 10) NOT NULL,
    functional_amount numeric(24, 6) NOT NULL, reporting_amount numeric(24, 6) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, source_record_id)
);

CREATE TABLE fact_invoice (
    source_system text NOT NULL, source_record_id text NOT NULL,  -- source_record_id: ERP invoice id
    opportunity_id text, customer_id text NOT NULL, project_id text, contract_id text,
    legal_entity text NOT NULL,
    invoice_number text, invoice_date date NOT NULL, due_date date NOT NULL, status text,
    net_amount numeric(20, 4) NOT NULL, tax_amount numeric(20, 4) NOT NULL, total_amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL, functional_currency char(3) NOT NULL, reporting_currency char(3) NOT NULL,
    fx_date date NOT NULL, fx_rate_functional numeric(20, 10) NOT NULL, fx_rate_reporting numeric(20, 10) NOT NULL,
    functional_net_amount numeric(24, 6) NOT NULL, reporting_net_amount numeric(24, 6) NOT NULL,
    functional_tax_amount numeric(24, 6) NOT NULL, reporting_tax_amount numeric(24, 6) NOT NULL,
    functional_total_amount numeric(24, 6) NOT NULL, reporting_total_amount numeric(24, 6) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, source_record_id),
    CHECK (total_amount = net_amount + tax_amount)
);
CREATE INDEX fact_invoice_date ON fact_invoice (invoice_date);

CREATE TABLE fact_credit_memo (
    source_system text NOT NULL, source_record_id text NOT NULL,
    opportunity_id text, customer_id text NOT NULL, project_id text, contract_id text,
    legal_entity text NOT NULL,
    memo_date date NOT NULL, invoice_id text, reason text,
    net_amount numeric(20, 4) NOT NULL, tax_amount numeric(20, 4) NOT NULL, total_amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL, functional_currency char(3) NOT NULL, reporting_currency char(3) NOT NULL,
    fx_date date NOT NULL, fx_rate_functional numeric(20, 10) NOT NULL, fx_rate_reporting numeric(20, 10) NOT NULL,
    functional_net_amount numeric(24, 6) NOT NULL, reporting_net_amount numeric(24, 6) NOT NULL,
    functional_tax_amount numeric(24, 6) NOT NULL, reporting_tax_amount numeric(24, 6) NOT NULL,
    functional_total_amount numeric(24, 6) NOT NULL, reporting_total_amount numeric(24, 6) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, source_record_id),
    CHECK (total_amount = net_amount + tax_amount)
);
CREATE INDEX fact_credit_memo_invoice ON fact_credit_memo (invoice_id);

CREATE TABLE fact_payment (
    source_system text NOT NULL, source_record_id text NOT NULL,
    opportunity_id text, customer_id text NOT NULL, project_id text, contract_id text,
    legal_entity text NOT NULL,
    payment_date date NOT NULL, invoice_id text,
    amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL, functional_currency char(3) NOT NULL, reporting_currency char(3) NOT NULL,
    fx_date date NOT NULL, fx_rate_functional numeric(20, 10) NOT NULL, fx_rate_reporting numeric(20, 10) NOT NULL,
    functional_amount numeric(24, 6) NOT NULL, reporting_amount numeric(24, 6) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, source_record_id)
);
CREATE INDEX fact_payment_invoice ON fact_payment (invoice_id);

CREATE TABLE fact_revenue (
    source_system text NOT NULL, source_record_id text NOT NULL,
    opportunity_id text, customer_id text NOT NULL, project_id text, contract_id text,
    legal_entity text NOT NULL,
    revenue_date date NOT NULL, contract_line_id text, revenue_method text,
    amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL, functional_currency char(3) NOT NULL, reporting_currency char(3) NOT NULL,
    fx_date date NOT NULL, fx_rate_functional numeric(20, 10) NOT NULL, fx_rate_reporting numeric(20, 10) NOT NULL,
    functional_amount numeric(24, 6) NOT NULL, reporting_amount numeric(24, 6) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, source_record_id)
);
CREATE INDEX fact_revenue_date ON fact_revenue (revenue_date);

CREATE TABLE fact_cost (
    source_system text NOT NULL, source_record_id text NOT NULL,
    opportunity_id text, customer_id text NOT NULL, project_id text, contract_id text,
    legal_entity text NOT NULL,
    cost_date date NOT NULL, cost_type text NOT NULL,   -- subcontractor, software, other (labor comes from time)
    amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL, functional_currency char(3) NOT NULL, reporting_currency char(3) NOT NULL,
    fx_date date NOT NULL, fx_rate_functional numeric(20, 10) NOT NULL, fx_rate_reporting numeric(20, 10) NOT NULL,
    functional_amount numeric(24, 6) NOT NULL, reporting_amount numeric(24, 6) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, source_record_id)
);

-- ---------------------------------------------------------------- exceptions and audit
CREATE TABLE hub_exception (
    id              bigserial PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    kind            text NOT NULL,        -- validation, provisioning, posting, reconciliation...
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'retrying', 'resolved')),
    source          text,                 -- where: workflow/activity/step
    workflow_id     text,
    run_id          text,
    workflow_link   text,
    opportunity_id  text, customer_id text, project_id text, contract_id text, legal_entity text,
    period          char(7),
    error_type      text,
    error_message   text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurrences     integer NOT NULL DEFAULT 1,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     text,
    resolution_note text
);
CREATE INDEX hub_exception_status ON hub_exception (status, last_seen_at DESC);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text NOT NULL,
    role       text,
    action     text NOT NULL,
    target     text,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    source_ip  text
);
CREATE INDEX audit_log_at ON audit_log (at DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'D2R02';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- ---------------------------------------------------------------- reconciliation
-- Per project and period totals as the PSA and the ERP hold them (extracted by the sync).
CREATE TABLE recon_source_total (
    source_system  text NOT NULL CHECK (source_system IN ('psa', 'erp')),
    legal_entity   text NOT NULL,
    project_id     text NOT NULL,
    period         char(7) NOT NULL,
    hours          numeric(14, 2),
    time_amount    numeric(20, 4),
    invoice_total  numeric(20, 4),
    currency       char(3),
    record_ids     text[] NOT NULL DEFAULT '{}',
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, legal_entity, period, project_id)
);

CREATE TABLE recon_run (
    id                bigserial PRIMARY KEY,
    period            char(7) NOT NULL,
    legal_entity      text NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    projects_checked  integer NOT NULL DEFAULT 0,
    differences       integer NOT NULL DEFAULT 0
);
CREATE INDEX recon_run_scope ON recon_run (legal_entity, period, id DESC);

CREATE TABLE recon_difference (
    run_id        bigint NOT NULL REFERENCES recon_run ON DELETE CASCADE,
    project_id    text NOT NULL,
    metric        text NOT NULL,
    psa_value     numeric(20, 4),
    erp_value     numeric(20, 4),
    hub_value     numeric(20, 4),
    currency      char(3),
    exception_id  bigint REFERENCES hub_exception,
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (run_id, project_id, metric)
);

-- migrate:down
DROP TABLE recon_difference, recon_run, recon_source_total, audit_log, hub_exception,
    fact_cost, fact_revenue, fact_payment, fact_credit_memo, fact_invoice,
    fact_billing_event, fact_expense, fact_time, fact_booking,
    dim_consultant, dim_project, dim_customer, dim_legal_entity, dim_service_offering,
    dim_service_line, dim_geography, dim_date, fx_rate, dim_currency, hub_setting CASCADE;
DROP VIEW IF EXISTS v_customer_ancestry;
DROP FUNCTION IF EXISTS audit_log_append_only();
DROP FUNCTION IF EXISTS hub_fx_rate(char, char, date);
