"""Pure transforms on numpy / Arrow data, one module per job; no store, engine or model imports."""
