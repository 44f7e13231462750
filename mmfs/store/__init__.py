"""The LanceDB store: tables, idempotent writes, search, SQL and readers for training."""
