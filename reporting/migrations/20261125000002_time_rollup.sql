-- migrate:up

-- Bulk loading speed: time facts arrive in (roughly) date order, so a BRIN index serves
-- date ranges at a fraction of a b-tree's insert cost; KPIs read the monthly rollup.
DROP INDEX fact_time_date;
DROP INDEX fact_time_project_date;
CREATE INDEX fact_time_work_date_brin ON fact_time USING brin (work_date);
CREATE INDEX fact_time_scope ON fact_time USING brin (legal_entity, work_date);

-- Monthly rollup of time facts, kept exact by statement-level triggers (transition
-- tables): every insert, update or delete of fact_time adds or subtracts its rows.
CREATE TABLE agg_time_month (
    month                  date NOT NULL,
    project_id             text NOT NULL,
    consultant_id          text NOT NULL,
    currency               char(3) NOT NULL,
    reporting_currency     char(3) NOT NULL,
    legal_entity           text NOT NULL,     -- the project's (lineage), not part of the key
    customer_id            text NOT NULL,
    functional_currency    char(3) NOT NULL,
    entries                bigint NOT NULL,
    hours                  numeric NOT NULL,
    billable_hours         numeric NOT NULL,
    bill_amount            numeric NOT NULL,
    cost_amount            numeric NOT NULL,
    functional_bill_amount numeric NOT NULL,
    reporting_bill_amount  numeric NOT NULL,
    functional_cost_amount numeric NOT NULL,
    reporting_cost_amount  numeric NOT NULL,
    PRIMARY KEY (month, project_id, consultant_id, currency, reporting_currency)
);
CREATE INDEX agg_time_month_empty ON agg_time_month (month) WHERE entries = 0;

CREATE FUNCTION agg_time_month_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO agg_time_month AS a
        SELECT date_trunc('month', work_date)::date, project_id, consultant_id, currency,
               reporting_currency, min(legal_entity), min(customer_id), min(functional_currency),
               -count(*), -sum(hours), -coalesce(sum(hours) FILTER (WHERE billable), 0),
               -sum(bill_amount), -sum(cost_amount),
               -sum(functional_bill_amount), -sum(reporting_bill_amount),
               -sum(functional_cost_amount), -sum(reporting_cost_amount)
          FROM old_rows GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (month, project_id, consultant_id, currency, reporting_currency)
        DO UPDATE SET
            legal_entity = EXCLUDED.legal_entity, customer_id = EXCLUDED.customer_id,
            functional_currency = EXCLUDED.functional_currency,
            entries = a.entries + EXCLUDED.entries, hours = a.hours + EXCLUDED.hours,
            billable_hours = a.billable_hours + EXCLUDED.billable_hours,
            bill_amount = a.bill_amount + EXCLUDED.bill_amount,
            cost_amount = a.cost_amount + EXCLUDED.cost_amount,
            functional_bill_amount = a.functional_bill_amount + EXCLUDED.functional_bill_amount,
            reporting_bill_amount = a.reporting_bill_amount + EXCLUDED.reporting_bill_amount,
            functional_cost_amount = a.functional_cost_amount + EXCLUDED.functional_cost_amount,
            reporting_cost_amount = a.reporting_cost_amount + EXCLUDED.reporting_cost_amount;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO agg_time_month AS a
        SELECT date_trunc('month', work_date)::date, project_id, consultant_id, currency,
               reporting_currency, min(legal_entity), min(customer_id), min(functional_currency),
               count(*), sum(hours), coalesce(sum(hours) FILTER (WHERE billable), 0),
               sum(bill_amount), sum(cost_amount),
               sum(functional_bill_amount), sum(reporting_bill_amount),
               sum(functional_cost_amount), sum(reporting_cost_amount)
          FROM new_rows GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (month, project_id, consultant_id, currency, reporting_currency)
        DO UPDATE SET
            legal_entity = EXCLUDED.legal_entity, customer_id = EXCLUDED.customer_id,
            functional_currency = EXCLUDED.functional_currency,
            entries = a.entries + EXCLUDED.entries, hours = a.hours + EXCLUDED.hours,
            billable_hours = a.billable_hours + EXCLUDED.billable_hours,
            bill_amount = a.bill_amount + EXCLUDED.bill_amount,
            cost_amount = a.cost_amount + EXCLUDED.cost_amount,
            functional_bill_amount = a.functional_bill_amount + EXCLUDED.functional_bill_amount,
            reporting_bill_amount = a.reporting_bill_amount + EXCLUDED.reporting_bill_amount,
            functional_cost_amount = a.functional_cost_amount + EXCLUDED.functional_cost_amount,
            reporting_cost_amount = a.reporting_cost_amount + EXCLUDED.reporting_cost_amount;
    END IF;
    DELETE FROM agg_time_month WHERE entries = 0;
    RETURN NULL;
END $$;

CREATE TRIGGER fact_time_rollup_insert AFTER INSERT ON fact_time
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agg_time_month_apply();
CREATE TRIGGER fact_time_rollup_update AFTER UPDATE ON fact_time
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agg_time_month_apply();
CREATE TRIGGER fact_time_rollup_delete AFTER DELETE ON fact_time
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agg_time_month_apply();
CREATE FUNCTION agg_time_month_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE agg_time_month;
    RETURN NULL;
END $$;
CREATE TRIGGER fact_time_rollup_truncate AFTER TRUNCATE ON fact_time
    FOR EACH STATEMENT EXECUTE FUNCTION agg_time_month_truncate();

-- Backfill from facts loaded before this migration.
INSERT INTO agg_time_month
SELECT date_trunc('month', work_date)::date, project_id, consultant_id, currency,
       reporting_currency, min(legal_entity), min(customer_id), min(functional_currency),
       count(*), sum(hours), coalesce(sum(hours) FILTER (WHERE billable), 0),
       sum(bill_amount), sum(cost_amount), sum(functional_bill_amount),
       sum(reporting_bill_amount), sum(functional_cost_amount), sum(reporting_cost_amount)
  FROM fact_time GROUP BY 1, 2, 3, 4, 5;

-- migrate:down
DROP TRIGGER fact_time_rollup_truncate ON fact_time;
DROP TRIGGER fact_time_rollup_delete ON fact_time;
DROP TRIGGER fact_time_rollup_update ON fact_time;
DROP TRIGGER fact_time_rollup_insert ON fact_time;
DROP FUNCTION agg_time_month_truncate();
DROP FUNCTION agg_time_month_apply();
DROP TABLE agg_time_month;
DROP INDEX fact_time_scope;
DROP INDEX fact_time_work_date_brin;
CREATE INDEX fact_time_date ON fact_time (work_date);
CREATE INDEX fact_time_project_date ON fact_time (project_id, work_date);
