"""seismo stream: Kafka and Redis wiring, the scorer, the CLI."""
