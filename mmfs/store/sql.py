"""DuckDB over the store: every table is a view of the same name, read straight from Lance."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mmfs.errors import ConfigError
from mmfs.store.db import Store


def connect(store: Store) -> Any:
    """A DuckDB connection with one view per store table, and no access to files or the network.

    External access is off and the configuration locked once the views are registered, so a query
    cannot `COPY … TO` over the store's files, read `/etc/passwd` or load an extension.
    """
    import duckdb

    con = duckdb.connect(config={"enable_external_access": False})
    for name in store.table_names():
        con.register(name, store.table(name).to_lance())
    con.execute("SET lock_configuration = true")
    return con


def run_sql(store: Store, query: str) -> pa.Table:
    """Run a SQL query over the store's tables; SQL errors are usage errors (exit code 2)."""
    import duckdb

    con = connect(store)
    try:
        return con.sql(query).to_arrow_table()
    except duckdb.Error as err:
        raise ConfigError(f"SQL error: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
