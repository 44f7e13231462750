"""Arrow schemas of the store's tables, their keys and the schema version."""

from mmfs.schemas.tables import (
    KEYS,
    MOTION_DIM,
    MOTION_FEATURES,
    SCHEMA_VERSION,
    TABLES,
    VECTOR_COLUMNS,
    Dims,
    all_schemas,
    with_provenance,
)

__all__ = [
    "KEYS",
    "MOTION_DIM",
    "MOTION_FEATURES",
    "SCHEMA_VERSION",
    "TABLES",
    "VECTOR_COLUMNS",
    "Dims",
    "all_schemas",
    "with_provenance",
]
