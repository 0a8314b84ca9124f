-- migrate:up

-- Project margin by service line (and legal entity / month), maintained: the sums the
-- general margin query takes per source, already grouped by the project's service line
-- (NULL when the fact has no project or the project is not in dim_project, as the
-- general query's LEFT JOIN gives), legal entity, month and currency pair. A 12-month
-- margin by service line reads a few hundred rows instead of ~50,000.
--
-- Sources, as in kpis.FLOW_KPIS["project_margin"]: fact_revenue (revenue),
-- agg_time_month (labour cost), fact_expense (expenses), fact_cost (other costs).
-- `<measure>_rows` counts the source rows behind each measure: a measure with no rows
-- reads as NULL (as in the general query) and a row with no source rows at all is
-- removed. Kept by statement-level triggers (transition tables) on each source, and by
-- triggers on dim_project that move a project's sums when its service line changes.
CREATE TABLE agg_margin_service_line_month (
    service_line           text,
    legal_entity           text NOT NULL,
    month                  date NOT NULL,
    functional_currency    char(3) NOT NULL,
    reporting_currency     char(3) NOT NULL,
    revenue_rows           bigint NOT NULL DEFAULT 0,
    functional_revenue     numeric NOT NULL DEFAULT 0,
    reporting_revenue      numeric NOT NULL DEFAULT 0,
    labor_cost_rows        bigint NOT NULL DEFAULT 0,
    functional_labor_cost  numeric NOT NULL DEFAULT 0,
    reporting_labor_cost   numeric NOT NULL DEFAULT 0,
    expense_cost_rows      bigint NOT NULL DEFAULT 0,
    functional_expense_cost numeric NOT NULL DEFAULT 0,
    reporting_expense_cost numeric NOT NULL DEFAULT 0,
    other_cost_rows        bigint NOT NULL DEFAULT 0,
    functional_other_cost  numeric NOT NULL DEFAULT 0,
    reporting_other_cost   numeric NOT NULL DEFAULT 0,
    CONSTRAINT agg_margin_service_line_month_key UNIQUE NULLS NOT DISTINCT
        (service_line, legal_entity, month, functional_currency, reporting_currency)
);

-- One source's rows (sign +1 new, -1 old) added under the service line their project
-- has now. TG_ARGV: measure, month expression, functional and reporting amount columns.
CREATE FUNCTION agg_margin_sl_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    measure text := TG_ARGV[0];
    rows_sql text;
BEGIN
    -- shared: loads of different sources stay concurrent; a service line move
    -- (exclusive) waits for them and they for it
    PERFORM pg_advisory_xact_lock_shared(hashtext('d2r:agg_margin_service_line_month'));
    rows_sql := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT 1 AS sgn, * FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT -1 AS sgn, * FROM old_rows'
        ELSE 'SELECT -1 AS sgn, * FROM old_rows UNION ALL SELECT 1, * FROM new_rows' END;
    EXECUTE format($q$
        INSERT INTO agg_margin_service_line_month AS a
               (service_line, legal_entity, month, functional_currency, reporting_currency,
                %1$I, %2$I, %3$I)
        SELECT p.service_line, d.legal_entity, %4$s, d.functional_currency,
               d.reporting_currency, sum(d.sgn), sum(d.sgn * d.%5$I), sum(d.sgn * d.%6$I)
          FROM (%7$s) d LEFT JOIN dim_project p ON p.project_id = d.project_id
         GROUP BY 1, 2, 3, 4, 5
        HAVING sum(d.sgn) <> 0 OR sum(d.sgn * d.%5$I) <> 0 OR sum(d.sgn * d.%6$I) <> 0
        ON CONFLICT (service_line, legal_entity, month, functional_currency,
                     reporting_currency)
        DO UPDATE SET %1$I = a.%1$I + EXCLUDED.%1$I, %2$I = a.%2$I + EXCLUDED.%2$I,
                      %3$I = a.%3$I + EXCLUDED.%3$I
        $q$, measure || '_rows', 'functional_' || measure, 'reporting_' || measure,
        TG_ARGV[1], TG_ARGV[2], TG_ARGV[3], rows_sql);
    DELETE FROM agg_margin_service_line_month
     WHERE revenue_rows = 0 AND labor_cost_rows = 0 AND expense_cost_rows = 0
       AND other_cost_rows = 0;
    RETURN NULL;
END $$;

-- Everything recomputed from the sources (backfill, and after a TRUNCATE of a source).
CREATE FUNCTION agg_margin_sl_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('d2r:agg_margin_service_line_month'));
    DELETE FROM agg_margin_service_line_month;
    INSERT INTO agg_margin_service_line_month
    SELECT p.service_line, s.legal_entity, s.month, s.functional_currency,
           s.reporting_currency,
           sum(s.revenue_rows), sum(s.functional_revenue), sum(s.reporting_revenue),
           sum(s.labor_cost_rows), sum(s.functional_labor_cost), sum(s.reporting_labor_cost),
           sum(s.expense_cost_rows), sum(s.functional_expense_cost),
           sum(s.reporting_expense_cost),
           sum(s.other_cost_rows), sum(s.functional_other_cost), sum(s.reporting_other_cost)
      FROM (
        SELECT project_id, legal_entity, date_trunc('month', revenue_date::timestamp)::date
               AS month, functional_currency, reporting_currency,
               count(*) AS revenue_rows, sum(functional_amount) AS functional_revenue,
               sum(reporting_amount) AS reporting_revenue,
               0 AS labor_cost_rows, 0 AS functional_labor_cost, 0 AS reporting_labor_cost,
               0 AS expense_cost_rows, 0 AS functional_expense_cost,
               0 AS reporting_expense_cost,
               0 AS other_cost_rows, 0 AS functional_other_cost, 0 AS reporting_other_cost
          FROM fact_revenue GROUP BY 1, 2, 3, 4, 5
        UNION ALL
        SELECT project_id, legal_entity, month, functional_currency, reporting_currency,
               0, 0, 0, count(*), sum(functional_cost_amount), sum(reporting_cost_amount),
               0, 0, 0, 0, 0, 0
          FROM agg_time_month GROUP BY 1, 2, 3, 4, 5
        UNION ALL
        SELECT project_id, legal_entity, date_trunc('month', expense_date::timestamp)::date,
               functional_currency, reporting_currency,
               0, 0, 0, 0, 0, 0, count(*), sum(functional_amount), sum(reporting_amount),
               0, 0, 0
          FROM fact_expense GROUP BY 1, 2, 3, 4, 5
        UNION ALL
        SELECT project_id, legal_entity, date_trunc('month', cost_date::timestamp)::date,
               functional_currency, reporting_currency,
               0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), sum(functional_amount),
               sum(reporting_amount)
          FROM fact_cost GROUP BY 1, 2, 3, 4, 5
      ) s LEFT JOIN dim_project p ON p.project_id = s.project_id
     GROUP BY 1, 2, 3, 4, 5;
END $$;

CREATE FUNCTION agg_margin_sl_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agg_margin_sl_rebuild();
    RETURN NULL;
END $$;

-- A project's service line changed (or the project appeared / went away): move its
-- sums from the old service line to the new one.
CREATE FUNCTION agg_margin_sl_move() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pids text[];
    olds text[];
    news text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(project_id), array_agg(NULL::text), array_agg(service_line)
          INTO pids, olds, news FROM new_rows WHERE service_line IS NOT NULL;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(project_id), array_agg(service_line), array_agg(NULL::text)
          INTO pids, olds, news FROM old_rows WHERE service_line IS NOT NULL;
    ELSE
        SELECT array_agg(coalesce(o.project_id, n.project_id)), array_agg(o.service_line),
               array_agg(n.service_line)
          INTO pids, olds, news
          FROM old_rows o FULL JOIN new_rows n ON n.project_id = o.project_id
         WHERE o.service_line IS DISTINCT FROM n.service_line;
    END IF;
    IF pids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('d2r:agg_margin_service_line_month'));
    INSERT INTO agg_margin_service_line_month AS a
    SELECT m.service_line, s.legal_entity, s.month, s.functional_currency,
           s.reporting_currency,
           sum(m.sgn * s.revenue_rows), sum(m.sgn * s.functional_revenue),
           sum(m.sgn * s.reporting_revenue),
           sum(m.sgn * s.labor_cost_rows), sum(m.sgn * s.functional_labor_cost),
           sum(m.sgn * s.reporting_labor_cost),
           sum(m.sgn * s.expense_cost_rows), sum(m.sgn * s.functional_expense_cost),
           sum(m.sgn * s.reporting_expense_cost),
           sum(m.sgn * s.other_cost_rows), sum(m.sgn * s.functional_other_cost),
           sum(m.sgn * s.reporting_other_cost)
      FROM (
        SELECT project_id, legal_entity, date_trunc('month', revenue_date::timestamp)::date
               AS month, functional_currency, reporting_currency,
               count(*) AS revenue_rows, sum(functional_amount) AS functional_revenue,
               sum(reporting_amount) AS reporting_revenue,
               0 AS labor_cost_rows, 0 AS functional_labor_cost, 0 AS reporting_labor_cost,
               0 AS expense_cost_rows, 0 AS functional_expense_cost,
               0 AS reporting_expense_cost,
               0 AS other_cost_rows, 0 AS functional_other_cost, 0 AS reporting_other_cost
          FROM fact_revenue WHERE project_id IN (SELECT unnest(pids))
         GROUP BY 1, 2, 3, 4, 5
        UNION ALL
        SELECT project_id, legal_entity, month, functional_currency, reporting_currency,
               0, 0, 0, count(*), sum(functional_cost_amount), sum(reporting_cost_amount),
               0, 0, 0, 0, 0, 0
          FROM agg_time_month WHERE project_id IN (SELECT unnest(pids))
         GROUP BY 1, 2, 3, 4, 5
        UNION ALL
        SELECT project_id, legal_entity, date_trunc('month', expense_date::timestamp)::date,
               functional_currency, reporting_currency,
               0, 0, 0, 0, 0, 0, count(*), sum(functional_amount), sum(reporting_amount),
               0, 0, 0
          FROM fact_expense WHERE project_id IN (SELECT unnest(pids))
         GROUP BY 1, 2, 3, 4, 5
        UNION ALL
        SELECT project_id, legal_entity, date_trunc('month', cost_date::timestamp)::date,
               functional_currency, reporting_currency,
               0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), sum(functional_amount),
               sum(reporting_amount)
          FROM fact_cost WHERE project_id IN (SELECT unnest(pids))
         GROUP BY 1, 2, 3, 4, 5
      ) s
      JOIN (SELECT u.project_id, u.old_sl AS service_line, -1 AS sgn
              FROM unnest(pids, olds, news) u(project_id, old_sl, new_sl)
            UNION ALL
            SELECT u.project_id, u.new_sl, 1
              FROM unnest(pids, olds, news) u(project_id, old_sl, new_sl)) m
        ON m.project_id = s.project_id
     GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (service_line, legal_entity, month, functional_currency, reporting_currency)
    DO UPDATE SET
        revenue_rows = a.revenue_rows + EXCLUDED.revenue_rows,
        functional_revenue = a.functional_revenue + EXCLUDED.functional_revenue,
        reporting_revenue = a.reporting_revenue + EXCLUDED.reporting_revenue,
        labor_cost_rows = a.labor_cost_rows + EXCLUDED.labor_cost_rows,
        functional_labor_cost = a.functional_labor_cost + EXCLUDED.functional_labor_cost,
        reporting_labor_cost = a.reporting_labor_cost + EXCLUDED.reporting_labor_cost,
        expense_cost_rows = a.expense_cost_rows + EXCLUDED.expense_cost_rows,
        functional_expense_cost = a.functional_expense_cost
                                  + EXCLUDED.functional_expense_cost,
        reporting_expense_cost = a.reporting_expense_cost + EXCLUDED.reporting_expense_cost,
        other_cost_rows = a.other_cost_rows + EXCLUDED.other_cost_rows,
        functional_other_cost = a.functional_other_cost + EXCLUDED.functional_other_cost,
        reporting_other_cost = a.reporting_other_cost + EXCLUDED.reporting_other_cost;
    DELETE FROM agg_margin_service_line_month
     WHERE revenue_rows = 0 AND labor_cost_rows = 0 AND expense_cost_rows = 0
       AND other_cost_rows = 0;
    RETURN NULL;
END $$;

-- triggers on the four sources
CREATE TRIGGER fact_revenue_margin_sl_insert AFTER INSERT ON fact_revenue
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION
    agg_margin_sl_apply('revenue', 'date_trunc(''month'', d.revenue_date::timestamp)::date',
                        'functional_amount', 'reporting_amount');
CREATE TRIGGER fact_revenue_margin_sl_update AFTER UPDATE ON fact_revenue
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION
    agg_margin_sl_apply('revenue', 'date_trunc(''month'', d.revenue_date::timestamp)::date',
                        'functional_amount', 'reporting_amount');
CREATE TRIGGER fact_revenue_margin_sl_delete AFTER DELETE ON fact_revenue
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION
    agg_margin_sl_apply('revenue', 'date_trunc(''month'', d.revenue_date::timestamp)::date',
                        'functional_amount', 'reporting_amount');
CREATE TRIGGER fact_revenue_margin_sl_truncate AFTER TRUNCATE ON fact_revenue
    FOR EACH STATEMENT EXECUTE FUNCTION agg_margin_sl_truncated();

CREATE TRIGGER agg_time_month_margin_sl_insert AFTER INSERT ON agg_time_month
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION
    agg_margin_sl_apply('labor_cost', 'd.month', 'functional_cost_amount',
                        'reporting_cost_amount');
CREATE TRIGGER agg_time_month_margin_sl_update AFTER UPDATE ON agg_time_month
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION
    agg_margin_sl_apply('labor_cost', 'd.month', 'functional_cost_amount',
                        'reporting_cost_amount');
CREATE TRIGGER agg_time_month_margin_sl_delete AFTER DELETE ON agg_time_month
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION
    agg_margin_sl_apply('labor_cost', 'd.month', 'functional_cost_amount',
                        'reporting_cost_amount');
CREATE TRIGGER agg_time_month_margin_sl_truncate AFTER TRUNCATE ON agg_time_month
    FOR EACH STATEMENT EXECUTE FUNCTION agg_margin_sl_truncated();

CREATE TRIGGER fact_expense_margin_sl_insert AFTER INSERT ON fact_expense
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION
    agg_margin_sl_apply('expense_cost', 'date_trunc(''month'', d.expense_date::timestamp)::date',
                        'functional_amount', 'reporting_amount');
CREATE TRIGGER fact_expense_margin_sl_update AFTER UPDATE ON fact_expense
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION
    agg_margin_sl_apply('expense_cost', 'date_trunc(''month'', d.expense_date::timestamp)::date',
                        'functional_amount', 'reporting_amount');
CREATE TRIGGER fact_expense_margin_sl_delete AFTER DELETE ON fact_expense
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION
    agg_margin_sl_apply('expense_cost', 'date_trunc(''month'', d.expense_date::timestamp)::date',
                        'functional_amount', 'reporting_amount');
CREATE TRIGGER fact_expense_margin_sl_truncate AFTER TRUNCATE ON fact_expense
    FOR EACH STATEMENT EXECUTE FUNCTION agg_margin_sl_truncated();

CREATE TRIGGER fact_cost_margin_sl_insert AFTER INSERT ON fact_cost
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION
    agg_margin_sl_apply('other_cost', 'date_trunc(''month'', d.cost_date::timestamp)::date',
                        'functional_amount', 'reporting_amount');
CREATE TRIGGER fact_cost_margin_sl_update AFTER UPDATE ON fact_cost
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION
    agg_margin_sl_apply('other_cost', 'date_trunc(''month'', d.cost_date::timestamp)::date',
                        'functional_amount', 'reporting_amount');
CREATE TRIGGER fact_cost_margin_sl_delete AFTER DELETE ON fact_cost
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION
    agg_margin_sl_apply('other_cost', 'date_trunc(''month'', d.cost_date::timestamp)::date',
                        'functional_amount', 'reporting_amount');
CREATE TRIGGER fact_cost_margin_sl_truncate AFTER TRUNCATE ON fact_cost
    FOR EACH STATEMENT EXECUTE FUNCTION agg_margin_sl_truncated();

-- the project dimension: service line changes move the project's sums
CREATE TRIGGER dim_project_margin_sl_insert AFTER INSERT ON dim_project
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION agg_margin_sl_move();
CREATE TRIGGER dim_project_margin_sl_update AFTER UPDATE ON dim_project
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION agg_margin_sl_move();
CREATE TRIGGER dim_project_margin_sl_delete AFTER DELETE ON dim_project
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION agg_margin_sl_move();
CREATE TRIGGER dim_project_margin_sl_truncate AFTER TRUNCATE ON dim_project
    FOR EACH STATEMENT EXECUTE FUNCTION agg_margin_sl_truncated();

-- Backfill from the data loaded before this migration.
SELECT agg_margin_sl_rebuild();

-- migrate:down
DROP TRIGGER dim_project_margin_sl_truncate ON dim_project;
DROP TRIGGER dim_project_margin_sl_delete ON dim_project;
DROP TRIGGER dim_project_margin_sl_update ON dim_project;
DROP TRIGGER dim_project_margin_sl_insert ON dim_project;
DROP TRIGGER fact_cost_margin_sl_truncate ON fact_cost;
DROP TRIGGER fact_cost_margin_sl_delete ON fact_cost;
DROP TRIGGER fact_cost_margin_sl_update ON fact_cost;
DROP TRIGGER fact_cost_margin_sl_insert ON fact_cost;
DROP TRIGGER fact_expense_margin_sl_truncate ON fact_expense;
DROP TRIGGER fact_expense_margin_sl_delete ON fact_expense;
DROP TRIGGER fact_expense_margin_sl_update ON fact_expense;
DROP TRIGGER fact_expense_margin_sl_insert ON fact_expense;
DROP TRIGGER agg_time_month_margin_sl_truncate ON agg_time_month;
DROP TRIGGER agg_time_month_margin_sl_delete ON agg_time_month;
DROP TRIGGER agg_time_month_margin_sl_update ON agg_time_month;
DROP TRIGGER agg_time_month_margin_sl_insert ON agg_time_month;
DROP TRIGGER fact_revenue_margin_sl_truncate ON fact_revenue;
DROP TRIGGER fact_revenue_margin_sl_delete ON fact_revenue;
DROP TRIGGER fact_revenue_margin_sl_update ON fact_revenue;
DROP TRIGGER fact_revenue_margin_sl_insert ON fact_revenue;
DROP FUNCTION agg_margin_sl_move();
DROP FUNCTION agg_margin_sl_truncated();
DROP FUNCTION agg_margin_sl_rebuild();
DROP FUNCTION agg_margin_sl_apply();
DROP TABLE agg_margin_service_line_month;
