-- Aggregates the dashboards read instead of scanning raw rows, kept up to date by materialized views as
-- rows arrive, and filled from what is already there when this migration runs.
--
-- Redelivery: a materialized view sees every insert, so a redelivered event reaches it twice. Counts are
-- therefore uniqExact states of event ids (or ticket ids), which a duplicate does not change. Ticket
-- outcomes (times, SLA, CSAT: a rating is the ticket's latest, `csat_at`) are not summed at all:
-- `ticket_outcomes` is the `tickets` table again, ordered and partitioned by opening time so a dashboard's
-- time range prunes it (`tickets` is ordered by ticket id), and read with FINAL like `tickets`.

-- Contacts and lifecycle events per hour and the dimensions a contact carries itself (its channel and its
-- classification). Few dimensions on purpose: every extra one multiplies the rows, and the uniqExact
-- states cost more to merge than a raw scan once a bucket holds a handful of events.
CREATE TABLE IF NOT EXISTS contacts_hourly
(
    hour      DateTime('UTC'),
    type      LowCardinality(String),
    channel   LowCardinality(String),
    category  LowCardinality(String),
    topic     LowCardinality(String),
    priority  LowCardinality(String),
    events    AggregateFunction(uniqExact, String),
    tickets   AggregateFunction(uniqExact, String),
    customers AggregateFunction(uniqExact, String),
    ingest_delay_ms AggregateFunction(quantiles(0.5, 0.95), Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, type, channel, category, topic, priority);

CREATE MATERIALIZED VIEW IF NOT EXISTS contacts_hourly_mv TO contacts_hourly AS
SELECT
    toStartOfHour(occurred_at) AS hour, type, channel, category, topic, priority,
    uniqExactState(event_id) AS events,
    uniqExactState(ticket_id) AS tickets,
    uniqExactState(customer_id) AS customers,
    quantilesState(0.5, 0.95)(dateDiff('millisecond', occurred_at, ingested_at)) AS ingest_delay_ms
FROM contact_events
GROUP BY hour, type, channel, category, topic, priority;

INSERT INTO contacts_hourly
SELECT
    toStartOfHour(occurred_at) AS hour, type, channel, category, topic, priority,
    uniqExactState(event_id), uniqExactState(ticket_id), uniqExactState(customer_id),
    quantilesState(0.5, 0.95)(dateDiff('millisecond', occurred_at, ingested_at))
FROM contact_events
GROUP BY hour, type, channel, category, topic, priority;

-- Per agent and day: replies, tickets touched, resolutions (no source reports handle time).
CREATE TABLE IF NOT EXISTS agent_daily
(
    day         Date,
    agent       String,
    team        LowCardinality(String),
    channel     LowCardinality(String),
    replies     AggregateFunction(uniqExactIf, String, UInt8),
    tickets     AggregateFunction(uniqExact, String),
    resolutions AggregateFunction(uniqExactIf, String, UInt8)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, agent, team, channel);

CREATE MATERIALIZED VIEW IF NOT EXISTS agent_daily_mv TO agent_daily AS
SELECT
    toDate(occurred_at) AS day, agent, team, channel,
    uniqExactIfState(event_id, toUInt8(type = 'agent_replied')) AS replies,
    uniqExactState(ticket_id) AS tickets,
    uniqExactIfState(ticket_id, toUInt8(type = 'status_changed' AND status IN ('resolved', 'closed'))) AS resolutions
FROM contact_events
WHERE agent != ''
GROUP BY day, agent, team, channel;

INSERT INTO agent_daily
SELECT
    toDate(occurred_at) AS day, agent, team, channel,
    uniqExactIfState(event_id, toUInt8(type = 'agent_replied')),
    uniqExactState(ticket_id),
    uniqExactIfState(ticket_id, toUInt8(type = 'status_changed' AND status IN ('resolved', 'closed')))
FROM contact_events
WHERE agent != ''
GROUP BY day, agent, team, channel;

-- Every ticket's latest state, ordered by opening time (a ticket's opening never moves, so all its rows
-- share a partition and FINAL folds them there).
CREATE TABLE IF NOT EXISTS ticket_outcomes AS tickets
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (toStartOfHour(opened_at), ticket_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ticket_outcomes_mv TO ticket_outcomes AS SELECT * FROM tickets;

INSERT INTO ticket_outcomes SELECT * FROM tickets;
