"""Pure domain logic: no Kafka, no ClickHouse, no asyncio. Time comes from an injected clock."""
