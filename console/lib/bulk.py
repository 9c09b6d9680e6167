"""Inserting and updating many rows fast on PostgreSQL.

Django's bulk_create sends every value as text that psycopg quotes and escapes one by one (in arrays for UNNEST), after
Django prepared each value of each column; binary COPY sends the values as they are, and the columns whose values are
already what the database takes skip Django's preparation (`rows_copy`, `rows_create` when the keys are needed,
`rows_upsert` for INSERT ... ON CONFLICT; `values_copy` and `values_upsert` take values where building a model
instance per row would cost more than the write). Django's bulk_update builds one CASE expression per field over all
rows, which grows with rows x fields and made it the slowest step of correlating a batch; one UPDATE ... FROM
(VALUES ...) does the same in linear time. SQLite (the quick start) inserts through bulk_create and updates with one
prepared statement (executemany: through the ORM, a query built per row was 3 ms a row and a tenth of storing
back-dated history).
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

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


# Columns whose values binary COPY takes as the model holds them (of these Python types; Django's preparation would
# return them unchanged): the rest go through the field's own preparation (JSON...). Preparing every value of every
# column was most of the time of copying a batch's rows.
_AS_HELD = {
    "AutoField": (int,),
    "BigAutoField": (int,),
    "BigIntegerField": (int,),
    "BooleanField": (bool,),
    "CharField": (str,),
    "DateField": (date,),
    "DecimalField": (Decimal,),
    "ForeignKey": (int,),
    "IntegerField": (int,),
    "PositiveBigIntegerField": (int,),
    "PositiveIntegerField": (int,),
    "PositiveSmallIntegerField": (int,),
    "SlugField": (str,),
    "SmallIntegerField": (int,),
    "TextField": (str,),
}


def _value_preparer(field: models.Field, db: BaseDatabaseWrapper) -> Callable[[Any], Any]:
    """A function giving the value binary COPY writes for a value of `field`, as `get_db_prep_save` would."""

    def prepared(value: Any) -> Any:
        return field.get_db_prep_save(value, db)

    internal = field.get_internal_type()
    if internal == "DateTimeField":
        return lambda v: v if v is None or (type(v) is datetime and v.tzinfo is not None) else prepared(v)
    held = _AS_HELD.get(internal)
    if held is None:
        return prepared
    return lambda v: v if v is None or type(v) in held else prepared(v)


def _object_preparer(field: models.Field, db: BaseDatabaseWrapper) -> Callable[[models.Model], Any]:
    """The same for `field` of an object (auto_now fields take their time as save() would)."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.get_db_prep_save(field.pre_save(obj, True), db)
    prepare, attname = _value_preparer(field, db), field.attname
    return lambda obj: prepare(getattr(obj, attname))


def _object_rows(objects: Sequence[models.Model], fields: Sequence[models.Field], db: BaseDatabaseWrapper) -> Iterator:
    preparers = [_object_preparer(f, db) for f in fields]
    relations = [f for f in fields if f.is_relation]
    for obj in objects:
        # As bulk_create does: a foreign key set to an object saved after it was assigned takes its new key.
        if any(getattr(obj, f.attname) is None and f.is_cached(obj) for f in relations):
            obj._prepare_related_fields_for_save(operation_name="rows_copy")
        yield [prepare(obj) for prepare in preparers]


def _value_rows(rows: Iterable[Sequence[Any]], fields: Sequence[models.Field], db: BaseDatabaseWrapper) -> Iterator:
    preparers = [_value_preparer(f, db) for f in fields]
    for row in rows:
        yield [prepare(value) for prepare, value in zip(preparers, row, strict=True)]


def _copy(table: str, fields: Sequence[models.Field], rows: Iterable[Sequence[Any]], db: BaseDatabaseWrapper) -> None:
    """Binary COPY of prepared `rows` (values of `fields`) into the (quoted) `table`."""
    names = ", ".join(db.ops.quote_name(f.column) for f in fields)
    statement = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
    # Wrapped, so that a storage fault during the COPY reaches callers as Django's error, like any query's.
    with db.wrap_database_errors, db.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        copy.set_types(copy_types(fields))
        for row in rows:
            copy.write_row(row)


def _upsert(
    model: type[models.Model],
    fields: Sequence[models.Field],
    rows: Iterable[Sequence[Any]],
    db: BaseDatabaseWrapper,
    *,
    unique_fields: Sequence[str],
    update_fields: Sequence[str],
) -> None:
    """PostgreSQL: prepared `rows` by binary COPY into a staging table, then one INSERT ... ON CONFLICT."""
    quote = db.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    table = quote(model._meta.db_table)
    staging = quote(f"staging_{model._meta.db_table}")
    if update_fields:
        target = ", ".join(quote(model._meta.get_field(name).column) for name in unique_fields)
        columns = (model._meta.get_field(name).column for name in update_fields)
        conflict = f"ON CONFLICT ({target}) DO UPDATE SET " + ", ".join(
            f"{quote(c)} = EXCLUDED.{quote(c)}" for c in columns
        )
    else:
        conflict = "ON CONFLICT DO NOTHING"
    # The staging table lives until the end of the transaction (no session state outlives it: PgBouncer-safe) and
    # is emptied after each use, so a second call in the same transaction finds it ready.
    with transaction.atomic(using=db.alias, savepoint=False), db.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA"
        )
        _copy(staging, fields, rows, db)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {conflict}")
        cursor.execute(f"DELETE FROM {staging}")


def _sqlite_create(
    model: type[models.Model],
    objects: Sequence[models.Model],
    *,
    unique_fields: Sequence[str] = (),
    update_fields: Sequence[str] = (),
    ignore_conflicts: bool = False,
) -> None:
    manager = model._base_manager
    if update_fields:
        manager.bulk_create(objects, update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields)
    else:
        manager.bulk_create(objects, batch_size=1000, ignore_conflicts=ignore_conflicts)


def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def rows_copy(objects: Sequence[models.Model]) -> None:
    """Insert new objects, their primary keys from the table's sequence and not read back (use `rows_create` when the
    caller needs them). Binary COPY on PostgreSQL; bulk_create elsewhere."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        _sqlite_create(model, objects)
        return
    db = connections[DEFAULT_DB_ALIAS]
    fields = _insert_fields(model)
    _copy(db.ops.quote_name(model._meta.db_table), fields, _object_rows(objects, fields, db), db)


def values_copy(model: type[models.Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows given as values of the fields `names` (attnames such as txn_id), in that order; defaults are not
    applied (give every column without a database default).

    For the hottest inserts: building a model instance per row cost more than the COPY itself. A value that is not
    already what the database takes (an int, a string, an aware datetime...) goes through its field's preparation, as
    in save(). Binary COPY on PostgreSQL; bulk_create of instances elsewhere."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        _sqlite_create(model, [model(**dict(zip(names, row, strict=True))) for row in rows])
        return
    db = connections[DEFAULT_DB_ALIAS]
    fields = [model._meta.get_field(name) for name in names]
    _copy(db.ops.quote_name(model._meta.db_table), fields, _value_rows(rows, fields, db), db)


def rows_create(objects: Sequence[models.Model]) -> None:
    """Insert new objects and set their primary keys, as bulk_create does (ascending in the order given).

    On PostgreSQL the keys are drawn from the table's sequence first and the rows go in by binary COPY: bulk_create
    sends every value as quoted text, which psycopg escapes value by value."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        _sqlite_create(model, objects)
        return
    db = connections[DEFAULT_DB_ALIAS]
    pk = model._meta.pk
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, pk.column, len(objects)],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
    for obj, new_id in zip(objects, ids, strict=True):
        obj.pk = new_id
        obj._state.adding = False
        obj._state.db = db.alias
    fields = model._meta.concrete_fields
    _copy(db.ops.quote_name(model._meta.db_table), fields, _object_rows(objects, fields, db), db)


def rows_upsert(
    objects: Sequence[models.Model], *, unique_fields: Sequence[str] = (), update_fields: Sequence[str] = ()
) -> None:
    """Insert new objects; a row that conflicts with a stored one on `unique_fields` updates its `update_fields`
    (without them the row is skipped, as bulk_create's ignore_conflicts). Primary keys are not read back.

    On PostgreSQL the rows go by binary COPY into a temporary table and from there in one INSERT ... ON CONFLICT, for
    the reason `rows_create` gives."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        _sqlite_create(
            model, objects, unique_fields=unique_fields, update_fields=update_fields, ignore_conflicts=not update_fields
        )
        return
    db = connections[DEFAULT_DB_ALIAS]
    fields = _insert_fields(model)
    rows = _object_rows(objects, fields, db)
    _upsert(model, fields, rows, db, unique_fields=unique_fields, update_fields=update_fields)


def values_upsert(
    model: type[models.Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    unique_fields: Sequence[str] = (),
    update_fields: Sequence[str] = (),
) -> None:
    """`rows_upsert` for rows given as values of the fields `names`, as `values_copy` takes them."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip(names, row, strict=True))) for row in rows]
        _sqlite_create(
            model, objects, unique_fields=unique_fields, update_fields=update_fields, ignore_conflicts=not update_fields
        )
        return
    db = connections[DEFAULT_DB_ALIAS]
    fields = [model._meta.get_field(name) for name in names]
    _upsert(model, fields, _value_rows(rows, fields, db), db, unique_fields=unique_fields, update_fields=update_fields)


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
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # the ORM knows without asking (an empty `__in`)
        return []
    return sql_rows(sql, params)


def sql_rows(sql: str, params: Sequence[Any]) -> list[tuple]:
    """PostgreSQL only: the rows of one SQL statement, read as `values_rows` reads them. Parameters are bound server
    side, so a list is one array parameter (`= ANY(%s)`): Django prepares each value of an `__in` list one by one,
    which for thousands of values cost more than the query."""
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()
