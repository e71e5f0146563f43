-- What the weekly report and the SLA panels need per ticket: the team holding it, the working time to
-- its first response, and whether each clock breached its target (met late, or past due while open).
-- Rows written before this migration read the defaults (no team, not breached) until the ticket changes.
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS team LowCardinality(String) DEFAULT '' AFTER status;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS first_response_sla_seconds Nullable(Float64) AFTER first_response_at;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS first_response_breached Bool DEFAULT false AFTER first_response_sla_seconds;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS resolution_breached Bool DEFAULT false AFTER resolution_calendar_seconds;
