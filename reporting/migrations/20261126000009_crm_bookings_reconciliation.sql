-- migrate:up

-- The source sync extracts the CRM's bookings too (closed-won deals of the entity in the
-- period, at their current contract value, per project), so reconciliation compares what
-- the CRM says was sold with the hub's booking facts.
ALTER TABLE recon_source_total DROP CONSTRAINT recon_source_total_source_system_check;
ALTER TABLE recon_source_total ADD CONSTRAINT recon_source_total_source_system_check
    CHECK (source_system IN ('psa', 'erp', 'crm'));
ALTER TABLE recon_source_total ADD COLUMN booking_total numeric(20, 4);

ALTER TABLE recon_source_stage DROP CONSTRAINT recon_source_stage_source_system_check;
ALTER TABLE recon_source_stage ADD CONSTRAINT recon_source_stage_source_system_check
    CHECK (source_system IN ('psa', 'erp', 'crm'));
ALTER TABLE recon_source_stage ADD COLUMN booking_total numeric(20, 4);

ALTER TABLE recon_difference ADD COLUMN crm_value numeric;

-- migrate:down

ALTER TABLE recon_difference DROP COLUMN crm_value;
DELETE FROM recon_source_stage WHERE source_system = 'crm';
ALTER TABLE recon_source_stage DROP COLUMN booking_total;
ALTER TABLE recon_source_stage DROP CONSTRAINT recon_source_stage_source_system_check;
ALTER TABLE recon_source_stage ADD CONSTRAINT recon_source_stage_source_system_check
    CHECK (source_system IN ('psa', 'erp'));
DELETE FROM recon_source_total WHERE source_system = 'crm';
ALTER TABLE recon_source_total DROP COLUMN booking_total;
ALTER TABLE recon_source_total DROP CONSTRAINT recon_source_total_source_system_check;
ALTER TABLE recon_source_total ADD CONSTRAINT recon_source_total_source_system_check
    CHECK (source_system IN ('psa', 'erp'));
