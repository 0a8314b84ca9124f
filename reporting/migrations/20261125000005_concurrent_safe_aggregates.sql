-- migrate:up

-- 1. Serialise engagement balance maintenance across concurrent loads.
CREATE OR REPLACE FUNCTION agg_eng_apply() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Bookings, revenue, invoices and credit memos may load concurrently and touch the
    -- same engagement rows: serialise the maintenance (each statement below then sees
    -- what the transaction that held the lock before committed).
    PERFORM pg_advisory_xact_lock(hashtext('d2r:agg_engagement_balance'));
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

-- 2. Invoice settlement refresh, set-based (the first version compared every row with
--    the whole id array: quadratic on bulk loads), and serialised like the balances.
CREATE OR REPLACE FUNCTION invoice_settlement_refresh(ids text[]) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtext('d2r:invoice_settlement'));
    DELETE FROM invoice_settlement s
     USING (SELECT DISTINCT unnest(ids) AS id) k
     WHERE s.source_record_id = k.id
       AND NOT EXISTS (SELECT 1 FROM fact_invoice i
                        WHERE i.source_system = s.source_system
                          AND i.source_record_id = s.source_record_id);
    WITH k AS (
        SELECT DISTINCT unnest(ids) AS id
    ), inv AS (
        SELECT i.source_system, i.source_record_id, i.invoice_date, i.total_amount
          FROM fact_invoice i JOIN k ON k.id = i.source_record_id
    ), ev AS (
        SELECT p.invoice_id, p.payment_date AS d, p.amount AS a
          FROM fact_payment p JOIN k ON k.id = p.invoice_id
        UNION ALL
        SELECT c.invoice_id, c.memo_date, c.total_amount
          FROM fact_credit_memo c JOIN k ON k.id = c.invoice_id
    ), daily AS (
        SELECT invoice_id, d, sum(a) AS a FROM ev GROUP BY 1, 2
    ), cum AS (
        SELECT invoice_id, d, sum(a) OVER (PARTITION BY invoice_id ORDER BY d) AS c
          FROM daily
    ), settled AS (
        SELECT inv.source_system, inv.source_record_id, min(cum.d) AS d
          FROM inv JOIN cum ON cum.invoice_id = inv.source_record_id
                           AND cum.c >= inv.total_amount
         GROUP BY 1, 2
    )
    INSERT INTO invoice_settlement AS s
    SELECT inv.source_system, inv.source_record_id, inv.invoice_date,
           coalesce(settled.d, 'infinity'::date)
      FROM inv LEFT JOIN settled USING (source_system, source_record_id)
    ON CONFLICT (source_system, source_record_id) DO UPDATE
       SET invoice_date = EXCLUDED.invoice_date, open_until = EXCLUDED.open_until
     WHERE (s.invoice_date, s.open_until) IS DISTINCT FROM
           (EXCLUDED.invoice_date, EXCLUDED.open_until);
$$;

-- migrate:down
-- The functions keep their new bodies: both are drop-in replacements.
SELECT 1;
