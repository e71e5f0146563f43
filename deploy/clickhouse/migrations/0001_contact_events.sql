-- Normalized contact events, one row per event_id.
-- ReplacingMergeTree on (day, event_id): a redelivered event or a batch re-read after a crash with other
-- batch boundaries collapses to one row at merge time; dashboards read with FINAL or uniqExact(event_id).
-- Retries of the same batch are dropped at insert time by insert_deduplication_token, which a
-- non-replicated MergeTree honours only with non_replicated_deduplication_window > 0.
CREATE TABLE IF NOT EXISTS contact_events
(
    event_id        String,
    type            LowCardinality(String),
    occurred_at     DateTime64(3, 'UTC'),
    ticket_id       String,
    channel         LowCardinality(String),
    source          LowCardinality(String),
    customer_id     String,
    customer_tier   LowCardinality(String),
    kind            LowCardinality(String),
    category        LowCardinality(String),
    topic           LowCardinality(String),
    priority        LowCardinality(String),
    subject         String,
    text            String,
    text_truncated  Bool,
    error_code      LowCardinality(String),
    product_version LowCardinality(String),
    status          LowCardinality(String),
    team            LowCardinality(String),
    agent           String,
    score           Nullable(UInt8),
    extra           String COMMENT 'unknown producer fields, JSON',
    kafka_partition UInt32,
    kafka_offset    UInt64,
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (toDate(occurred_at), event_id)
SETTINGS non_replicated_deduplication_window = 10000
