"""Create the store's tables, and bring an older database up to the current columns.

create_all makes missing tables but never touches existing ones, so a store written by an older
version would lack newer columns (runs.heartbeat_at) and every query naming them would fail. Newer
columns are always nullable, so adding them is one `ALTER TABLE ... ADD COLUMN` each, and the rows
already there read None (for heartbeat_at: "no heartbeat recorded", see db.lifecycle).
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect
from sqlalchemy.schema import Column

from .models import Base


def create_or_upgrade(engine: Engine) -> list[str]:
    """Create missing tables, add missing nullable columns; return the columns added ("table.column")."""
    Base.metadata.create_all(engine)
    present = inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in present.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable:
                    raise RuntimeError(f"cannot add required column {table.name}.{column.name} to an existing store")
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {_column_sql(engine, column)}")
                added.append(f"{table.name}.{column.name}")
    return added


def _column_sql(engine: Engine, column: Column) -> str:
    preparer = engine.dialect.identifier_preparer
    return f"{preparer.quote(column.name)} {column.type.compile(dialect=engine.dialect)}"
