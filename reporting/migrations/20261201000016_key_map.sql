-- migrate:up

-- The key map: every cross-system record d2r creates or learns, one row per record in one
-- system instance. `record_key` is d2r's external id where d2r wrote the record (invoices,
-- journals, sales orders ... carry it in the ERP), else the system's own id (an opportunity,
-- an account); `record_id` is the system's own id once known (the ERP's internal id).
-- `opportunity_id` ties a record to its deal; `related` to the records it points at (the
-- invoice of a credit memo, the projects a posting journal carries). Written by the hub
-- writes that already happen (engagement facts, posting pages, document posting), never
-- by an Action of its own; rewritten only when something changed.
CREATE TABLE hub_key_map (
    system         text NOT NULL CHECK (system IN ('crm', 'psa', 'erp')),
    instance       text NOT NULL DEFAULT '',
    record_type    text NOT NULL,
    record_key     text NOT NULL,
    record_id      text,
    external_id    text,
    opportunity_id text,
    project_id     text,
    legal_entity   text,
    related        text[] NOT NULL DEFAULT '{}',
    source         text NOT NULL,
    workflow_id    text,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, instance, record_type, record_key)
);
CREATE INDEX hub_key_map_key ON hub_key_map (record_key);
CREATE INDEX hub_key_map_record_id ON hub_key_map (record_id) WHERE record_id IS NOT NULL;
CREATE INDEX hub_key_map_external_id ON hub_key_map (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX hub_key_map_opportunity ON hub_key_map (opportunity_id) WHERE opportunity_id IS NOT NULL;
CREATE INDEX hub_key_map_project ON hub_key_map (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX hub_key_map_related ON hub_key_map USING gin (related);

-- migrate:down

DROP TABLE hub_key_map;
