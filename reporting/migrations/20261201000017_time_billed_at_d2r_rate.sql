-- migrate:up

-- What d2r billed each time entry at. A time fact carries the PSA's bill rate (the rate on
-- the timecard, as posting and the PSA reconciliation see it); d2r bills by its own rate
-- precedence (contract line > account rate card > region > generic), so the invoice can
-- differ. The engagement's hub write records each billed time entry here, from its billing
-- events, whichever arrives first (posting's time fact or the billing); `v_time_billed`
-- shows both rates side by side.
CREATE TABLE billed_time (
    source_record_id text NOT NULL,         -- the time entry: fact_time.source_record_id
    opportunity_id   text,
    project_id       text,
    legal_entity     text NOT NULL,
    contract_line_id text,
    billing_event_id text NOT NULL,
    invoice_id       text,
    event_date       date NOT NULL,
    currency         char(3) NOT NULL REFERENCES dim_currency,
    hours            numeric(20, 4) NOT NULL,
    billed_rate      numeric(20, 4) NOT NULL,
    billed_amount    numeric(20, 4) NOT NULL,   -- unrounded, as the billing event (the invoice line rounds)
    loaded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_record_id, billing_event_id)  -- an entry billed in parts has a row per event
);
CREATE INDEX billed_time_project ON billed_time (project_id, event_date);

CREATE VIEW v_time_billed AS
SELECT t.source_system, t.source_record_id, t.opportunity_id, t.project_id, t.legal_entity,
       t.consultant_id, t.work_date, t.hours, t.billable,
       t.currency AS psa_currency,
       CASE WHEN t.hours <> 0 THEN round(t.bill_amount / t.hours, 4) END AS psa_bill_rate,
       t.bill_amount AS psa_bill_amount,
       b.currency AS billed_currency,
       CASE WHEN b.hours <> 0 THEN round(b.billed_amount / b.hours, 4) END AS billed_rate,
       b.hours AS billed_hours, b.billed_amount, b.invoice_ids, b.contract_line_id
  FROM fact_time t
  LEFT JOIN (SELECT source_record_id, min(currency) AS currency, sum(hours) AS hours,
                    sum(billed_amount) AS billed_amount, min(contract_line_id) AS contract_line_id,
                    array_agg(DISTINCT invoice_id) FILTER (WHERE invoice_id IS NOT NULL) AS invoice_ids
               FROM billed_time GROUP BY source_record_id) b USING (source_record_id);

-- migrate:down

DROP VIEW v_time_billed;
DROP TABLE billed_time;
