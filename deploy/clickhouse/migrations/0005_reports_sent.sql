-- Weekly reports sent by the worker's schedule: a week's row means it went out, so a restart or a second
-- worker does not send it again. Written after the SMTP server accepted the message.
CREATE TABLE IF NOT EXISTS reports_sent
(
    iso_week   String,
    recipients String,
    sent_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(sent_at)
ORDER BY iso_week
