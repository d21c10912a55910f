"""The warehouse every stage reads and writes: the client (DuckDB by default, PostgreSQL in production) and the
canonical schema of its raw tables. Floor layer: imported by ingestion, features, ml, serving and the CLI."""
