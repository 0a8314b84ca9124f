-- migrate:up

-- Functional and reporting amounts are stored in their currency's minor unit (USD cents,
-- whole JPY, KWD fils): each fact is converted at its dated rate and rounded half away
-- from zero, on its own, so the rows of every KPI add up to its total exactly. Invoices
-- and credit memos round net and total; tax is their difference (the document adds up
-- in every currency). Existing rows are rounded the same way, then the columns narrow
-- from numeric(24,6) to numeric(24,4), the largest minor unit dim_currency allows.
CREATE FUNCTION hub_minor_unit(p_currency char(3)) RETURNS smallint
LANGUAGE sql STABLE AS $$ SELECT minor_unit FROM dim_currency WHERE currency = p_currency $$;

DO $$
DECLARE
    spec record;
    col text;
    sets text;
    cols text[];
BEGIN
    FOR spec IN SELECT * FROM (VALUES
        ('fact_booking', ARRAY['amount']),
        ('fact_time', ARRAY['bill_amount', 'cost_amount']),
        ('fact_expense', ARRAY['amount']),
        ('fact_billing_event', ARRAY['amount']),
        ('fact_invoice', ARRAY['net_amount', 'total_amount']),
        ('fact_credit_memo', ARRAY['net_amount', 'total_amount']),
        ('fact_payment', ARRAY['amount']),
        ('fact_revenue', ARRAY['amount']),
        ('fact_cost', ARRAY['amount'])) AS t(tbl, money)
    LOOP
        sets := '';
        cols := spec.money;
        FOREACH col IN ARRAY spec.money LOOP
            sets := sets || format(
                '%1$I = round(%1$I, hub_minor_unit(functional_currency)), '
                '%2$I = round(%2$I, hub_minor_unit(reporting_currency)), ',
                'functional_' || col, 'reporting_' || col);
        END LOOP;
        IF 'total_amount' = ANY (spec.money) THEN
            sets := sets || format(
                'functional_tax_amount = round(functional_total_amount, hub_minor_unit(functional_currency))'
                ' - round(functional_net_amount, hub_minor_unit(functional_currency)), '
                'reporting_tax_amount = round(reporting_total_amount, hub_minor_unit(reporting_currency))'
                ' - round(reporting_net_amount, hub_minor_unit(reporting_currency)), ');
            cols := cols || ARRAY['tax_amount'];
        END IF;
        -- The aggregate triggers see the update, so the rollups move with the facts.
        EXECUTE format('UPDATE %I SET %s', spec.tbl, left(sets, -2));
        FOREACH col IN ARRAY cols LOOP
            EXECUTE format('ALTER TABLE %1$I ALTER COLUMN %2$I TYPE numeric(24, 4), '
                           'ALTER COLUMN %3$I TYPE numeric(24, 4)',
                           spec.tbl, 'functional_' || col, 'reporting_' || col);
        END LOOP;
    END LOOP;
END $$;

-- migrate:down

DO $$
DECLARE
    spec record;
    col text;
BEGIN
    FOR spec IN SELECT * FROM (VALUES
        ('fact_booking', ARRAY['amount']),
        ('fact_time', ARRAY['bill_amount', 'cost_amount']),
        ('fact_expense', ARRAY['amount']),
        ('fact_billing_event', ARRAY['amount']),
        ('fact_invoice', ARRAY['net_amount', 'tax_amount', 'total_amount']),
        ('fact_credit_memo', ARRAY['net_amount', 'tax_amount', 'total_amount']),
        ('fact_payment', ARRAY['amount']),
        ('fact_revenue', ARRAY['amount']),
        ('fact_cost', ARRAY['amount'])) AS t(tbl, money)
    LOOP
        FOREACH col IN ARRAY spec.money LOOP
            EXECUTE format('ALTER TABLE %1$I ALTER COLUMN %2$I TYPE numeric(24, 6), '
                           'ALTER COLUMN %3$I TYPE numeric(24, 6)',
                           spec.tbl, 'functional_' || col, 'reporting_' || col);
        END LOOP;
    END LOOP;
END $$;
DROP FUNCTION hub_minor_unit(char(3));
