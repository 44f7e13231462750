"""Operations around runs: watching folders, metrics and lineage (above pipelines and store, below cli)."""
