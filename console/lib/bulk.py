"""Inserting and updating many rows fast on PostgreSQL.

Django's bulk_create sends one INSERT with a placeholder per value, whose text psycopg parses anew for every size of
batch; binary COPY sends the values as they are. Django's bulk_update builds one CASE expression per field over all
rows, which grows with rows x fields and made it the slowest step of correlating a batch; one UPDATE ... FROM
(VALUES ...) does the same in linear time. SQLite (the quick start) inserts through bulk_create and updates with one
prepared statement (executemany: through the ORM, a query built per row was 3 ms a row and a tenth of storing
back-dated history).
"""

from collections.abc import Sequence

from django.db import connection, models

# Names psycopg's binary COPY knows for the column types Django declares (the rest are the same in both).
_COPY_TYPE_NAMES = {
    "timestamp with time zone": "timestamptz",
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "boolean": "bool",
}


def copy_types(fields: Sequence[models.Field]) -> list[str]:
    """The binary COPY types of `fields`' columns (an attname such as txn_id finds its field too)."""
    types = []
    for field in fields:
        base = field.db_type(connection).split("(")[0].strip()
        types.append(_COPY_TYPE_NAMES.get(base, base))
    return types


def rows_copy(objects: Sequence[models.Model]) -> None:
    """Insert new objects, their primary keys from the table's sequence and not read back (use bulk_create when the
    caller needs them). Binary COPY on PostgreSQL; bulk_create elsewhere."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model._base_manager.bulk_create(objects, batch_size=1000)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    statement = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
    # Wrapped, so that a storage fault during the COPY reaches callers as Django's error, like any query's.
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        copy.set_types(copy_types(fields))
        for obj in objects:
            # As bulk_create does: a foreign key set to an object saved after it was assigned takes its new key.
            obj._prepare_related_fields_for_save(operation_name="rows_copy")
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])


def rows_update(objects: Sequence[models.Model], fields: list[str], *, chunk: int = 500) -> None:
    """Write `fields` of each object (matched by primary key)."""
    if not objects:
        return
    model = type(objects[0])
    columns = [model._meta.get_field(name) for name in fields]
    pk = model._meta.pk
    if connection.vendor != "postgresql":
        quote = connection.ops.quote_name
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET {', '.join(f'{quote(c.column)} = %s' for c in columns)} "
            f"WHERE {quote(pk.column)} = %s"
        )
        with connection.cursor() as cursor:
            cursor.executemany(
                sql,
                [
                    [*(c.get_db_prep_save(getattr(obj, c.attname), connection) for c in columns), obj.pk]
                    for obj in objects
                ],
            )
        return
    casts = [pk.db_type(connection), *(c.db_type(connection) for c in columns)]
    row = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    names = ", ".join(connection.ops.quote_name(c.column) for c in (pk, *columns))
    assignments = ", ".join(
        f"{connection.ops.quote_name(c.column)} = v.{connection.ops.quote_name(c.column)}" for c in columns
    )
    table = connection.ops.quote_name(model._meta.db_table)
    key = connection.ops.quote_name(pk.column)
    with connection.cursor() as cursor:
        for start in range(0, len(objects), chunk):
            part = objects[start : start + chunk]
            params: list = []
            for obj in part:
                params.append(obj.pk)
                params += [c.get_db_prep_save(getattr(obj, c.attname), connection) for c in columns]
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM (VALUES {', '.join([row] * len(part))}) AS v({names}) "
                f"WHERE t.{key} = v.{key}",
                params,
            )


def values_rows(queryset: models.QuerySet) -> list[tuple]:
    """The rows of a `values_list()` queryset, as tuples, read fast on PostgreSQL.

    Django decodes each timestamptz with psycopg's pure-Python text loader (wrapped to set the time zone) and each
    row through its converters: about 40 us a row for a 25-column row. A binary server-side-bound cursor decodes in
    C (timestamps arrive in UTC, the session time zone Django sets; JSON decoded), about half the time. Same values
    as `list(queryset)` otherwise; other databases read through the ORM.
    """
    if connection.vendor != "postgresql":
        return list(queryset)
    import psycopg

    sql, params = queryset.query.sql_with_params()
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()
