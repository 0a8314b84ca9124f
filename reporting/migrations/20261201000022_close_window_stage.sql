-- migrate:up

-- A month-end window's per-engagement facts while the window runs (reporting/close_stage.py):
-- the PSA's delivery by project and each engagement's outbox by workflow id, written and read
-- by the window's activities, so the window's Temporal payloads carry ids, not the facts.
-- Idempotent (a retried activity overwrites its rows); the close's reconciliation deletes
-- its run's rows, and rows older than a month (a close that ended early).
CREATE TABLE close_window_stage (
    report_id   text NOT NULL,     -- the close run's: `<workflow id>/<run id>`
    window_no   integer NOT NULL,
    part        text NOT NULL,     -- contracts.window_stage: delivery | outbox
    item_key    text NOT NULL,     -- project id (delivery) or engagement workflow id (outbox)
    body        jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (report_id, window_no, part, item_key)
);
CREATE INDEX close_window_stage_recorded_at ON close_window_stage (recorded_at);

-- migrate:down

DROP TABLE close_window_stage;
