-- Every alert state change (firing, updated, resolved) as published on the alert topics.
-- A replayed change is the same alert_id, status and details: the ReplacingMergeTree key folds it.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id        String,
    rule            LowCardinality(String),
    status          LowCardinality(String),
    severity        LowCardinality(String),
    audience        LowCardinality(String),
    subject         String COMMENT 'JSON object',
    starts_at       DateTime64(3, 'UTC'),
    ends_at         Nullable(DateTime64(3, 'UTC')),
    summary         String,
    details         String COMMENT 'JSON object',
    kafka_partition UInt32,
    kafka_offset    UInt64,
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(starts_at)
ORDER BY (rule, alert_id, status, cityHash64(details))
SETTINGS non_replicated_deduplication_window = 10000
