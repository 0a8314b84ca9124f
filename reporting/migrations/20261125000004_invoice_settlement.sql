-- migrate:up

-- When each invoice became fully settled (payments + credit memos applied reached its
-- total): open_until is that date, or 'infinity' while it is open. Receivables at a date
-- D then only touch invoices with invoice_date <= D < open_until (an index range),
-- instead of every invoice and payment ever. Kept exact by statement triggers.
CREATE TABLE invoice_settlement (
    source_system    text NOT NULL,
    source_record_id text NOT NULL,       -- the invoice id payments and memos point to
    invoice_date     date NOT NULL,
    open_until       date NOT NULL,
    PRIMARY KEY (source_system, source_record_id)
);
CREATE INDEX invoice_settlement_open ON invoice_settlement (open_until, invoice_date);
CREATE INDEX fact_invoice_record ON fact_invoice (source_record_id);

CREATE FUNCTION invoice_settlement_refresh(ids text[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM invoice_settlement s
     WHERE s.source_record_id = ANY (ids)
       AND NOT EXISTS (SELECT 1 FROM fact_invoice i
                        WHERE i.source_system = s.source_system
                          AND i.source_record_id = s.source_record_id);
    WITH ev AS (
        SELECT invoice_id, payment_date AS d, amount AS a FROM fact_payment
         WHERE invoice_id = ANY (ids)
        UNION ALL
        SELECT invoice_id, memo_date, total_amount FROM fact_credit_memo
         WHERE invoice_id = ANY (ids)
    ), cum AS (
        SELECT invoice_id, d, sum(a) OVER (PARTITION BY invoice_id ORDER BY d) AS c FROM ev
    )
    INSERT INTO invoice_settlement AS s
    SELECT i.source_system, i.source_record_id, i.invoice_date,
           coalesce((SELECT min(cum.d) FROM cum
                      WHERE cum.invoice_id = i.source_record_id AND cum.c >= i.total_amount),
                    'infinity'::date)
      FROM fact_invoice i WHERE i.source_record_id = ANY (ids)
    ON CONFLICT (source_system, source_record_id) DO UPDATE
       SET invoice_date = EXCLUDED.invoice_date, open_until = EXCLUDED.open_until
     WHERE (s.invoice_date, s.open_until) IS DISTINCT FROM
           (EXCLUDED.invoice_date, EXCLUDED.open_until);
$$;

CREATE FUNCTION invoice_settlement_from_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE ids text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT source_record_id) INTO ids FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT id) INTO ids FROM (
            SELECT source_record_id AS id FROM new_rows
            UNION SELECT source_record_id FROM old_rows) x;
    ELSE
        SELECT array_agg(DISTINCT source_record_id) INTO ids FROM old_rows;
    END IF;
    PERFORM invoice_settlement_refresh(ids);
    RETURN NULL;
END $$;

CREATE FUNCTION invoice_settlement_from_settlements() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE ids text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT invoice_id) INTO ids FROM new_rows
         WHERE invoice_id IS NOT NULL;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT id) INTO ids FROM (
            SELECT invoice_id AS id FROM new_rows UNION SELECT invoice_id FROM old_rows) x
         WHERE id IS NOT NULL;
    ELSE
        SELECT array_agg(DISTINCT invoice_id) INTO ids FROM old_rows
         WHERE invoice_id IS NOT NULL;
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM invoice_settlement_refresh(ids);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION invoice_settlement_rebuild() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM invoice_settlement;
    PERFORM invoice_settlement_refresh(ARRAY(SELECT source_record_id FROM fact_invoice));
    RETURN NULL;
END $$;

CREATE TRIGGER fact_invoice_settlement_insert AFTER INSERT ON fact_invoice
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_from_invoice();
CREATE TRIGGER fact_invoice_settlement_update AFTER UPDATE ON fact_invoice
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_from_invoice();
CREATE TRIGGER fact_invoice_settlement_delete AFTER DELETE ON fact_invoice
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_from_invoice();
CREATE TRIGGER fact_payment_settlement_insert AFTER INSERT ON fact_payment
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_from_settlements();
CREATE TRIGGER fact_payment_settlement_update AFTER UPDATE ON fact_payment
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_from_settlements();
CREATE TRIGGER fact_payment_settlement_delete AFTER DELETE ON fact_payment
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_from_settlements();
CREATE TRIGGER fact_credit_memo_settlement_insert AFTER INSERT ON fact_credit_memo
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_from_settlements();
CREATE TRIGGER fact_credit_memo_settlement_update AFTER UPDATE ON fact_credit_memo
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_from_settlements();
CREATE TRIGGER fact_credit_memo_settlement_delete AFTER DELETE ON fact_credit_memo
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_from_settlements();
CREATE TRIGGER fact_invoice_settlement_truncate AFTER TRUNCATE ON fact_invoice
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_rebuild();
CREATE TRIGGER fact_payment_settlement_truncate AFTER TRUNCATE ON fact_payment
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_rebuild();
CREATE TRIGGER fact_credit_memo_settlement_truncate AFTER TRUNCATE ON fact_credit_memo
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_settlement_rebuild();

SELECT invoice_settlement_refresh(ARRAY(SELECT source_record_id FROM fact_invoice));

-- migrate:down
DROP TRIGGER fact_credit_memo_settlement_truncate ON fact_credit_memo;
DROP TRIGGER fact_payment_settlement_truncate ON fact_payment;
DROP TRIGGER fact_invoice_settlement_truncate ON fact_invoice;
DROP TRIGGER fact_credit_memo_settlement_delete ON fact_credit_memo;
DROP TRIGGER fact_credit_memo_settlement_update ON fact_credit_memo;
DROP TRIGGER fact_credit_memo_settlement_insert ON fact_credit_memo;
DROP TRIGGER fact_payment_settlement_delete ON fact_payment;
DROP TRIGGER fact_payment_settlement_update ON fact_payment;
DROP TRIGGER fact_payment_settlement_insert ON fact_payment;
DROP TRIGGER fact_invoice_settlement_delete ON fact_invoice;
DROP TRIGGER fact_invoice_settlement_update ON fact_invoice;
DROP TRIGGER fact_invoice_settlement_insert ON fact_invoice;
DROP FUNCTION invoice_settlement_rebuild();
DROP FUNCTION invoice_settlement_from_settlements();
DROP FUNCTION invoice_settlement_from_invoice();
DROP FUNCTION invoice_settlement_refresh(text[]);
DROP INDEX fact_invoice_record;
DROP TABLE invoice_settlement;
