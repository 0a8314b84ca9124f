-- migrate:up

-- The scheduled source sync extracts PSA and ERP totals a page at a time. Each page
-- stages its per-project totals here under the sync run's key and its own part name
-- (a retried page overwrites its part), and the run's last step replaces the entity's
-- and period's `recon_source_total` rows from the stage in one transaction: a
-- reconciliation never sees half an extract.
CREATE TABLE recon_source_stage (
    sync_key       text NOT NULL,
    part           text NOT NULL,
    source_system  text NOT NULL CHECK (source_system IN ('psa', 'erp')),
    legal_entity   text NOT NULL,
    period         char(7) NOT NULL,
    project_id     text NOT NULL,
    hours          numeric(14, 2),
    time_amount    numeric(20, 4),
    invoice_total  numeric(20, 4),
    currency       char(3),
    record_ids     text[] NOT NULL DEFAULT '{}',
    staged_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sync_key, source_system, part, project_id)
);

CREATE INDEX recon_source_stage_staged_at ON recon_source_stage (staged_at);

-- migrate:down

DROP TABLE recon_source_stage;
