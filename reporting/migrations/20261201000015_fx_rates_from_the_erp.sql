-- migrate:up

-- Rates come from the ERPs' currency-rate records (a daily sync), dated; the reference data
-- file's rates stay as the fallback for days before the ERP has any. Every rate says where
-- it came from: `source_system` ('netsuite:<instance>', 'dynamics:<instance>' or
-- 'reference_data'), the source's record id, and when it was synced.
ALTER TABLE fx_rate ADD COLUMN source_record_id text,
                    ADD COLUMN synced_at timestamptz NOT NULL DEFAULT now();
-- Before this migration only the reference data wrote rates (labelled 'erp' by default).
UPDATE fx_rate SET source_system = 'reference_data' WHERE source_system = 'erp';
ALTER TABLE fx_rate ALTER COLUMN source_system SET DEFAULT 'reference_data';
INSERT INTO hub_setting (key, value) VALUES ('fx_pivot', 'USD') ON CONFLICT (key) DO NOTHING;

-- The rate in force on a day: the latest on or before it, direct, else inverted, else
-- crossed through the pivot currency (ERPs publish rates against their base currency);
-- a cross rate is good for the older of its two legs' dates. No rate at all raises D2R01,
-- which the loaders turn into a visible `fx.missing_rate` exception.
CREATE OR REPLACE FUNCTION hub_fx_rate_direct(p_from char(3), p_to char(3), p_on date)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
DECLARE r numeric;
BEGIN
    IF p_from = p_to THEN RETURN 1; END IF;
    SELECT rate INTO r FROM fx_rate
     WHERE from_currency = p_from AND to_currency = p_to AND rate_date <= p_on
     ORDER BY rate_date DESC LIMIT 1;
    IF r IS NOT NULL THEN RETURN r; END IF;
    SELECT 1 / rate INTO r FROM fx_rate
     WHERE from_currency = p_to AND to_currency = p_from AND rate_date <= p_on
     ORDER BY rate_date DESC LIMIT 1;
    RETURN r;
END $$;

CREATE OR REPLACE FUNCTION hub_fx_rate(p_from char(3), p_to char(3), p_on date)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
DECLARE r numeric; pivot char(3);
BEGIN
    r := hub_fx_rate_direct(p_from, p_to, p_on);
    IF r IS NOT NULL THEN RETURN r; END IF;
    SELECT value INTO pivot FROM hub_setting WHERE key = 'fx_pivot';
    IF pivot IS NOT NULL AND pivot NOT IN (p_from, p_to) THEN
        r := hub_fx_rate_direct(p_from, pivot, p_on) * hub_fx_rate_direct(pivot, p_to, p_on);
        IF r IS NOT NULL THEN RETURN round(r, 10); END IF;
    END IF;
    RAISE EXCEPTION 'no FX rate % -> % on or before %', p_from, p_to, p_on
        USING ERRCODE = 'D2R01', DETAIL = format('%s|%s|%s', p_from, p_to, p_on);
END $$;

-- migrate:down

CREATE OR REPLACE FUNCTION hub_fx_rate(p_from char(3), p_to char(3), p_on date)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
DECLARE r numeric;
BEGIN
    IF p_from = p_to THEN RETURN 1; END IF;
    SELECT rate INTO r FROM fx_rate
     WHERE from_currency = p_from AND to_currency = p_to AND rate_date <= p_on
     ORDER BY rate_date DESC LIMIT 1;
    IF r IS NOT NULL THEN RETURN r; END IF;
    SELECT 1 / rate INTO r FROM fx_rate
     WHERE from_currency = p_to AND to_currency = p_from AND rate_date <= p_on
     ORDER BY rate_date DESC LIMIT 1;
    IF r IS NOT NULL THEN RETURN r; END IF;
    RAISE EXCEPTION 'no FX rate % -> % on or before %', p_from, p_to, p_on
        USING ERRCODE = 'D2R01';
END $$;
DROP FUNCTION hub_fx_rate_direct(char, char, date);
DELETE FROM hub_setting WHERE key = 'fx_pivot';
ALTER TABLE fx_rate ALTER COLUMN source_system SET DEFAULT 'erp';
ALTER TABLE fx_rate DROP COLUMN synced_at, DROP COLUMN source_record_id;
