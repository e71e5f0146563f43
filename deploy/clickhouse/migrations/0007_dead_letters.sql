-- What was refused, and why: one row per record on the dead-letter topic, from its headers (the reason
-- and where the record came from). Neither the record nor the detail is copied (either can hold personal
-- data); the record stays on the dead-letter topic at this row's offset.
CREATE TABLE IF NOT EXISTS dead_letters
(
    dead_lettered_at DateTime64(3, 'UTC'),
    reason           LowCardinality(String),
    source_topic     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64,
    size_bytes       UInt64,
    withheld         Bool,
    kafka_partition  UInt32,
    kafka_offset     UInt64,
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(dead_lettered_at)
ORDER BY (toDate(dead_lettered_at), kafka_partition, kafka_offset)
SETTINGS non_replicated_deduplication_window = 10000
