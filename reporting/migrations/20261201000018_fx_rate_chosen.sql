-- migrate:up

-- The rate in force on a day, with its evidence: the rate, the day it is of, where it came
-- from and the pivot of a cross rate (NULLs when there is none). One rule, here: the
-- loaders convert facts through hub_fx_rate, which reads this, and the engagements convert
-- their documents at what this returns (the fx.rates_on activity), so the engagement view
-- and the hub cannot convert one figure at two rates. The rule is unchanged: the latest
-- direct rate on or before the day, else the latest inverse one, else crossed through the
-- pivot (10 decimals, good for the older leg's date).
CREATE FUNCTION hub_fx_rate_leg(p_from char(3), p_to char(3), p_on date,
    OUT rate numeric, OUT rate_date date, OUT source_system text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
BEGIN
    SELECT f.rate, f.rate_date, f.source_system INTO rate, rate_date, source_system FROM fx_rate f
     WHERE f.from_currency = p_from AND f.to_currency = p_to AND f.rate_date <= p_on
     ORDER BY f.rate_date DESC LIMIT 1;
    IF rate IS NOT NULL THEN RETURN; END IF;
    SELECT 1 / f.rate, f.rate_date, f.source_system INTO rate, rate_date, source_system FROM fx_rate f
     WHERE f.from_currency = p_to AND f.to_currency = p_from AND f.rate_date <= p_on
     ORDER BY f.rate_date DESC LIMIT 1;
END $$;

CREATE FUNCTION hub_fx_rate_chosen(p_from char(3), p_to char(3), p_on date,
    OUT rate numeric, OUT rate_date date, OUT source_system text, OUT via char(3))
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE pivot char(3); a record; b record;
BEGIN
    IF p_from = p_to THEN
        rate := 1; rate_date := p_on; source_system := 'identity'; RETURN;
    END IF;
    SELECT * INTO a FROM hub_fx_rate_leg(p_from, p_to, p_on);
    IF a.rate IS NOT NULL THEN
        rate := a.rate; rate_date := a.rate_date; source_system := a.source_system; RETURN;
    END IF;
    SELECT value INTO pivot FROM hub_setting WHERE key = 'fx_pivot';
    IF pivot IS NULL OR pivot IN (p_from, p_to) THEN RETURN; END IF;
    SELECT * INTO a FROM hub_fx_rate_leg(p_from, pivot, p_on);
    SELECT * INTO b FROM hub_fx_rate_leg(pivot, p_to, p_on);
    IF a.rate IS NULL OR b.rate IS NULL THEN RETURN; END IF;
    rate := round(a.rate * b.rate, 10);
    rate_date := least(a.rate_date, b.rate_date);
    source_system := CASE WHEN a.source_system = b.source_system THEN a.source_system
                          ELSE a.source_system || '+' || b.source_system END;
    via := pivot;
END $$;

CREATE OR REPLACE FUNCTION hub_fx_rate_direct(p_from char(3), p_to char(3), p_on date)
RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_from = p_to THEN 1 ELSE (hub_fx_rate_leg(p_from, p_to, p_on)).rate END
$$;

CREATE OR REPLACE FUNCTION hub_fx_rate(p_from char(3), p_to char(3), p_on date)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
DECLARE r numeric;
BEGIN
    r := (hub_fx_rate_chosen(p_from, p_to, p_on)).rate;
    IF r IS NOT NULL THEN RETURN r; END IF;
    RAISE EXCEPTION 'no FX rate % -> % on or before %', p_from, p_to, p_on
        USING ERRCODE = 'D2R01', DETAIL = format('%s|%s|%s', p_from, p_to, p_on);
END $$;

-- migrate:down

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

DROP FUNCTION hub_fx_rate_chosen(char, char, date);
DROP FUNCTION hub_fx_rate_leg(char, char, date);
