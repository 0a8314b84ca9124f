-- migrate:up

-- Bookings are append-only: the deal as booked keeps its row and its date; a change order
-- is its own row (positive or negative) at its effective date, naming its amendment.
ALTER TABLE fact_booking ADD COLUMN amendment_id text;
CREATE INDEX fact_booking_original ON fact_booking (legal_entity, booking_date)
    WHERE amendment_id IS NULL;

-- migrate:down

DROP INDEX fact_booking_original;
ALTER TABLE fact_booking DROP COLUMN amendment_id;
