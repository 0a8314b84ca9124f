-- migrate:up

-- A month-end's report, one row per engagement per close run (`report_id` is the close's
-- workflow id and run id), so the close's own payloads stay bounded whatever the entity's
-- size; the API pages through it by workflow id.
CREATE TABLE close_report_line (
    report_id    text NOT NULL,
    workflow_id  text NOT NULL,
    legal_entity text NOT NULL,
    period       text NOT NULL,
    window_no    integer NOT NULL,
    ok           boolean NOT NULL,
    line         jsonb NOT NULL,  -- contracts.period_close.EngagementCloseLine, money as strings
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (report_id, workflow_id)
);

-- Every exception the close raised (billing and revenue runs, engagements not closed, the
-- final posting run's sample, reconciliation), paged by exception id.
CREATE TABLE close_report_exception (
    report_id    text NOT NULL,
    exception_id text NOT NULL,
    code         text NOT NULL,
    body         jsonb NOT NULL,  -- domain.model.ExceptionRecord
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (report_id, exception_id)
);

-- migrate:down

DROP TABLE close_report_exception;
DROP TABLE close_report_line;
