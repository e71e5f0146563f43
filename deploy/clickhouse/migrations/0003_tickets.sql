-- The latest state of every ticket and its SLA metrics, one row per change; read with FINAL.
-- `version` is the record's offset in contacts.tickets (a ticket's records share a partition), so the
-- newest state wins and a replayed record folds into the one it repeats.
CREATE TABLE IF NOT EXISTS tickets
(
    ticket_id                     String,
    opened_at                     DateTime64(3, 'UTC'),
    first_seen_mid_life           Bool,
    last_event_at                 DateTime64(3, 'UTC'),
    channel                       LowCardinality(String),
    customer_id                   String,
    customer_tier                 LowCardinality(String),
    category                      LowCardinality(String),
    kind                          LowCardinality(String),
    topic                         LowCardinality(String),
    priority                      LowCardinality(String),
    status                        LowCardinality(String),
    sla_policy                    LowCardinality(String),
    sla_calendar                  LowCardinality(String),
    first_response_target_seconds Float64,
    first_response_at             Nullable(DateTime64(3, 'UTC')),
    resolution_target_seconds     Float64,
    resolved_at                   Nullable(DateTime64(3, 'UTC')),
    resolution_sla_seconds        Nullable(Float64),
    resolution_calendar_seconds   Nullable(Float64),
    touches                       UInt32,
    handoffs                      UInt32,
    escalations                   UInt32,
    reopens                       UInt32,
    agent_replies                 UInt32,
    first_contact_resolution      Bool,
    csat_score                    Nullable(UInt8),
    version                       UInt64,
    ingested_at                   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY ticket_id
SETTINGS non_replicated_deduplication_window = 10000
