-- migrate:up

-- Cumulative balances per engagement (project, else contract, else customer) and month:
-- one row per month with movements, holding everything booked, recognized and billed
-- (invoices net of credit memos) up to the end of that month, valid for month ends until
-- next_month. Backlog, WIP and deferred revenue read one row per engagement instead of
-- scanning every booking, revenue entry and invoice. Statement triggers keep it exact.
CREATE TABLE agg_engagement_balance (
    eng                  text NOT NULL,
    functional_currency  char(3) NOT NULL,
    reporting_currency   char(3) NOT NULL,
    month                date NOT NULL,
    next_month           date,
    legal_entity         text NOT NULL,
    customer_id          text NOT NULL,
    project_id           text,
    functional_booked     numeric NOT NULL DEFAULT 0,
    reporting_booked      numeric NOT NULL DEFAULT 0,
    functional_recognized numeric NOT NULL DEFAULT 0,
    reporting_recognized  numeric NOT NULL DEFAULT 0,
    functional_billed     numeric NOT NULL DEFAULT 0,
    reporting_billed      numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (eng, functional_currency, reporting_currency, month)
);
CREATE INDEX agg_engagement_balance_month ON agg_engagement_balance (month);

-- Movements of one statement, filled by the per-table trigger functions below.
CREATE FUNCTION agg_eng_prepare() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.eng_deltas') IS NOT NULL THEN
        TRUNCATE pg_temp.eng_deltas;
        RETURN;
    END IF;
    CREATE TEMP TABLE eng_deltas (
        eng text, functional_currency char(3), reporting_currency char(3), month date,
        legal_entity text, customer_id text, project_id text,
        functional_booked numeric, reporting_booked numeric,
        functional_recognized numeric, reporting_recognized numeric,
        functional_billed numeric, reporting_billed numeric
    ) ON COMMIT DELETE ROWS;
END $$;

CREATE FUNCTION agg_eng_apply() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- 1. a row for every (engagement, month) with movements, starting from the
    --    cumulative values of the engagement's previous row
    INSERT INTO agg_engagement_balance AS a
    SELECT d.eng, d.functional_currency, d.reporting_currency, d.month, NULL,
           d.legal_entity, d.customer_id, d.project_id,
           coalesce(p.functional_booked, 0), coalesce(p.reporting_booked, 0),
           coalesce(p.functional_recognized, 0), coalesce(p.reporting_recognized, 0),
           coalesce(p.functional_billed, 0), coalesce(p.reporting_billed, 0)
      FROM (SELECT eng, functional_currency, reporting_currency, month,
                   min(legal_entity) AS legal_entity, min(customer_id) AS customer_id,
                   min(project_id) AS project_id
              FROM pg_temp.eng_deltas GROUP BY 1, 2, 3, 4) d
      LEFT JOIN LATERAL (
            SELECT * FROM agg_engagement_balance b
             WHERE b.eng = d.eng AND b.functional_currency = d.functional_currency
               AND b.reporting_currency = d.reporting_currency AND b.month < d.month
             ORDER BY b.month DESC LIMIT 1) p ON true
    ON CONFLICT (eng, functional_currency, reporting_currency, month) DO NOTHING;

    -- 2. add each movement to its month and every later month of the engagement
    UPDATE agg_engagement_balance b SET
        functional_booked = b.functional_booked + x.functional_booked,
        reporting_booked = b.reporting_booked + x.reporting_booked,
        functional_recognized = b.functional_recognized + x.functional_recognized,
        reporting_recognized = b.reporting_recognized + x.reporting_recognized,
        functional_billed = b.functional_billed + x.functional_billed,
        reporting_billed = b.reporting_billed + x.reporting_billed
      FROM (SELECT b2.eng, b2.functional_currency, b2.reporting_currency, b2.month,
                   sum(d.functional_booked) AS functional_booked,
                   sum(d.reporting_booked) AS reporting_booked,
                   sum(d.functional_recognized) AS functional_recognized,
                   sum(d.reporting_recognized) AS reporting_recognized,
                   sum(d.functional_billed) AS functional_billed,
                   sum(d.reporting_billed) AS reporting_billed
              FROM agg_engagement_balance b2 JOIN (
                   SELECT eng, functional_currency, reporting_currency, month,
                          sum(functional_booked) AS functional_booked,
                          sum(reporting_booked) AS reporting_booked,
                          sum(functional_recognized) AS functional_recognized,
                          sum(reporting_recognized) AS reporting_recognized,
                          sum(functional_billed) AS functional_billed,
                          sum(reporting_billed) AS reporting_billed
                     FROM pg_temp.eng_deltas GROUP BY 1, 2, 3, 4) d
                ON d.eng = b2.eng AND d.functional_currency = b2.functional_currency
               AND d.reporting_currency = b2.reporting_currency AND d.month <= b2.month
             GROUP BY 1, 2, 3, 4) x
     WHERE b.eng = x.eng AND b.functional_currency = x.functional_currency
       AND b.reporting_currency = x.reporting_currency AND b.month = x.month;

    -- 3. validity ranges of the engagements touched
    UPDATE agg_engagement_balance b SET next_month = x.next_month
      FROM (SELECT eng, functional_currency, reporting_currency, month,
                   lead(month) OVER (PARTITION BY eng, functional_currency, reporting_currency
                                     ORDER BY month) AS next_month
              FROM agg_engagement_balance
             WHERE (eng, functional_currency, reporting_currency) IN (
                   SELECT eng, functional_currency, reporting_currency
                     FROM pg_temp.eng_deltas)) x
     WHERE b.eng = x.eng AND b.functional_currency = x.functional_currency
       AND b.reporting_currency = x.reporting_currency AND b.month = x.month
       AND b.next_month IS DISTINCT FROM x.next_month;
END $$;

-- One function per source table: its date column, its money column, its measure.
CREATE FUNCTION agg_eng_from_booking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agg_eng_prepare();
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO pg_temp.eng_deltas
        SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
               reporting_currency, date_trunc('month', booking_date)::date, legal_entity,
               customer_id, project_id, -functional_amount, -reporting_amount, 0, 0, 0, 0
          FROM old_rows;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO pg_temp.eng_deltas
        SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
               reporting_currency, date_trunc('month', booking_date)::date, legal_entity,
               customer_id, project_id, functional_amount, reporting_amount, 0, 0, 0, 0
          FROM new_rows;
    END IF;
    PERFORM agg_eng_apply();
    RETURN NULL;
END $$;

CREATE FUNCTION agg_eng_from_revenue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agg_eng_prepare();
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO pg_temp.eng_deltas
        SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
               reporting_currency, date_trunc('month', revenue_date)::date, legal_entity,
               customer_id, project_id, 0, 0, -functional_amount, -reporting_amount, 0, 0
          FROM old_rows;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO pg_temp.eng_deltas
        SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
               reporting_currency, date_trunc('month', revenue_date)::date, legal_entity,
               customer_id, project_id, 0, 0, functional_amount, reporting_amount, 0, 0
          FROM new_rows;
    END IF;
    PERFORM agg_eng_apply();
    RETURN NULL;
END $$;

CREATE FUNCTION agg_eng_from_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agg_eng_prepare();
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO pg_temp.eng_deltas
        SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
               reporting_currency, date_trunc('month', invoice_date)::date, legal_entity,
               customer_id, project_id, 0, 0, 0, 0, -functional_net_amount,
               -reporting_net_amount
          FROM old_rows;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO pg_temp.eng_deltas
        SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
               reporting_currency, date_trunc('month', invoice_date)::date, legal_entity,
               customer_id, project_id, 0, 0, 0, 0, functional_net_amount,
               reporting_net_amount
          FROM new_rows;
    END IF;
    PERFORM agg_eng_apply();
    RETURN NULL;
END $$;

CREATE FUNCTION agg_eng_from_credit_memo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agg_eng_prepare();
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO pg_temp.eng_deltas
        SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
               reporting_currency, date_trunc('month', memo_date)::date, legal_entity,
               customer_id, project_id, 0, 0, 0, 0, functional_net_amount,
               reporting_net_amount
          FROM old_rows;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO pg_temp.eng_deltas
        SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
               reporting_currency, date_trunc('month', memo_date)::date, legal_entity,
               customer_id, project_id, 0, 0, 0, 0, -functional_net_amount,
               -reporting_net_amount
          FROM new_rows;
    END IF;
    PERFORM agg_eng_apply();
    RETURN NULL;
END $$;

CREATE TRIGGER fact_booking_balance_insert AFTER INSERT ON fact_booking
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_booking();
CREATE TRIGGER fact_booking_balance_update AFTER UPDATE ON fact_booking
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_booking();
CREATE TRIGGER fact_booking_balance_delete AFTER DELETE ON fact_booking
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_booking();

CREATE TRIGGER fact_revenue_balance_insert AFTER INSERT ON fact_revenue
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_revenue();
CREATE TRIGGER fact_revenue_balance_update AFTER UPDATE ON fact_revenue
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_revenue();
CREATE TRIGGER fact_revenue_balance_delete AFTER DELETE ON fact_revenue
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_revenue();

CREATE TRIGGER fact_invoice_balance_insert AFTER INSERT ON fact_invoice
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_invoice();
CREATE TRIGGER fact_invoice_balance_update AFTER UPDATE ON fact_invoice
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_invoice();
CREATE TRIGGER fact_invoice_balance_delete AFTER DELETE ON fact_invoice
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_invoice();

CREATE TRIGGER fact_credit_memo_balance_insert AFTER INSERT ON fact_credit_memo
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_credit_memo();
CREATE TRIGGER fact_credit_memo_balance_update AFTER UPDATE ON fact_credit_memo
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_credit_memo();
CREATE TRIGGER fact_credit_memo_balance_delete AFTER DELETE ON fact_credit_memo
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_from_credit_memo();

-- Rebuild from the facts: the backfill, and what TRUNCATE of a source table triggers.
CREATE FUNCTION agg_eng_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM agg_engagement_balance;
    INSERT INTO agg_engagement_balance
    SELECT eng, functional_currency, reporting_currency, month,
           lead(month) OVER (PARTITION BY eng, functional_currency, reporting_currency
                             ORDER BY month),
           legal_entity, customer_id, project_id,
           sum(b_f) OVER w, sum(b_r) OVER w, sum(r_f) OVER w, sum(r_r) OVER w,
           sum(i_f) OVER w, sum(i_r) OVER w
      FROM (
        SELECT eng, functional_currency, reporting_currency, month, min(legal_entity) AS legal_entity,
               min(customer_id) AS customer_id, min(project_id) AS project_id,
               sum(b_f) AS b_f, sum(b_r) AS b_r, sum(r_f) AS r_f, sum(r_r) AS r_r,
               sum(i_f) AS i_f, sum(i_r) AS i_r
          FROM (
            SELECT coalesce(project_id, contract_id, '~' || customer_id) AS eng, functional_currency,
                   reporting_currency, date_trunc('month', booking_date)::date AS month,
                   legal_entity, customer_id, project_id, functional_amount AS b_f,
                   reporting_amount AS b_r, 0 AS r_f, 0 AS r_r, 0 AS i_f, 0 AS i_r
              FROM fact_booking
            UNION ALL
            SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
                   reporting_currency, date_trunc('month', revenue_date)::date, legal_entity,
                   customer_id, project_id, 0, 0, functional_amount, reporting_amount, 0, 0
              FROM fact_revenue
            UNION ALL
            SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
                   reporting_currency, date_trunc('month', invoice_date)::date, legal_entity,
                   customer_id, project_id, 0, 0, 0, 0, functional_net_amount, reporting_net_amount
              FROM fact_invoice
            UNION ALL
            SELECT coalesce(project_id, contract_id, '~' || customer_id), functional_currency,
                   reporting_currency, date_trunc('month', memo_date)::date, legal_entity,
                   customer_id, project_id, 0, 0, 0, 0, -functional_net_amount,
                   -reporting_net_amount
              FROM fact_credit_memo
          ) m GROUP BY 1, 2, 3, 4
      ) g
    WINDOW w AS (PARTITION BY eng, functional_currency, reporting_currency ORDER BY month);
END $$;

CREATE FUNCTION agg_eng_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agg_eng_rebuild();
    RETURN NULL;
END $$;
CREATE TRIGGER fact_booking_balance_truncate AFTER TRUNCATE ON fact_booking
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_on_truncate();
CREATE TRIGGER fact_revenue_balance_truncate AFTER TRUNCATE ON fact_revenue
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_on_truncate();
CREATE TRIGGER fact_invoice_balance_truncate AFTER TRUNCATE ON fact_invoice
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_on_truncate();
CREATE TRIGGER fact_credit_memo_balance_truncate AFTER TRUNCATE ON fact_credit_memo
    FOR EACH STATEMENT EXECUTE FUNCTION agg_eng_on_truncate();

SELECT agg_eng_rebuild();

-- migrate:down
DROP TRIGGER fact_credit_memo_balance_truncate ON fact_credit_memo;
DROP TRIGGER fact_invoice_balance_truncate ON fact_invoice;
DROP TRIGGER fact_revenue_balance_truncate ON fact_revenue;
DROP TRIGGER fact_booking_balance_truncate ON fact_booking;
DROP FUNCTION agg_eng_on_truncate();
DROP FUNCTION agg_eng_rebuild();
DROP TRIGGER fact_credit_memo_balance_delete ON fact_credit_memo;
DROP TRIGGER fact_credit_memo_balance_update ON fact_credit_memo;
DROP TRIGGER fact_credit_memo_balance_insert ON fact_credit_memo;
DROP TRIGGER fact_invoice_balance_delete ON fact_invoice;
DROP TRIGGER fact_invoice_balance_update ON fact_invoice;
DROP TRIGGER fact_invoice_balance_insert ON fact_invoice;
DROP TRIGGER fact_revenue_balance_delete ON fact_revenue;
DROP TRIGGER fact_revenue_balance_update ON fact_revenue;
DROP TRIGGER fact_revenue_balance_insert ON fact_revenue;
DROP TRIGGER fact_booking_balance_delete ON fact_booking;
DROP TRIGGER fact_booking_balance_update ON fact_booking;
DROP TRIGGER fact_booking_balance_insert ON fact_booking;
DROP FUNCTION agg_eng_from_credit_memo();
DROP FUNCTION agg_eng_from_invoice();
DROP FUNCTION agg_eng_from_revenue();
DROP FUNCTION agg_eng_from_booking();
DROP FUNCTION agg_eng_apply();
DROP FUNCTION agg_eng_prepare();
DROP TABLE agg_engagement_balance;
