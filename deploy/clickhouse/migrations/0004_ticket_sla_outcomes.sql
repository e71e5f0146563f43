-- What the weekly report and the SLA panels need per ticket: the team and agent holding it, the working time to
-- its first response, whether each clock breached its target (met late, or past due while open), and
-- when each running clock reaches its target (the SLA board's "time left"), and when the latest rating came.
-- Rows written before this migration read the defaults (no team, not breached) until the ticket changes.
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS team LowCardinality(String) DEFAULT '' AFTER status;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS agent String DEFAULT '' AFTER team;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS first_response_sla_seconds Nullable(Float64) AFTER first_response_at;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS first_response_breached Bool DEFAULT false AFTER first_response_sla_seconds;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS resolution_breached Bool DEFAULT false AFTER resolution_calendar_seconds;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS first_response_due_at Nullable(DateTime64(3, 'UTC')) AFTER resolution_breached;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS resolution_due_at Nullable(DateTime64(3, 'UTC')) AFTER first_response_due_at;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS csat_at Nullable(DateTime64(3, 'UTC')) AFTER csat_score;
