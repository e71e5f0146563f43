"""Where results leave the stream: ClickHouse tables, alert topics, notifiers."""
