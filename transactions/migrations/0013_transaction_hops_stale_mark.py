from django.db import migrations, models

OLD_INDEX = models.Index(fields=["updated_at"], name="txn_updated_idx")
INDEX = models.Index(
    condition=models.Q(hops_stale_since__isnull=False), fields=["hops_stale_since", "id"], name="txn_hops_stale_idx"
)


def create(apps, schema_editor):
    model = apps.get_model("transactions", "Transaction")
    if schema_editor.connection.vendor == "postgresql":
        # Built and dropped without blocking writes, as 0010 built the old one: correlation updates transactions.
        table = model._meta.db_table
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS txn_hops_stale_idx ON {table} (hops_stale_since, id) "
            "WHERE hops_stale_since IS NOT NULL"
        )
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS txn_updated_idx")
    else:
        schema_editor.add_index(model, INDEX)
        schema_editor.remove_index(model, OLD_INDEX)


def drop(apps, schema_editor):
    model = apps.get_model("transactions", "Transaction")
    schema_editor.add_index(model, OLD_INDEX)
    schema_editor.remove_index(model, INDEX)


class Migration(migrations.Migration):
    # CREATE and DROP INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("transactions", "0012_interface_monthly_histograms"),
    ]

    operations = [
        # Existing transactions start unmarked: discovery and the old sweep derived them (a new column with no
        # default is a catalogue change, not a rewrite of the table).
        migrations.AddField(
            model_name="transaction",
            name="hops_stale_since",
            field=models.DateTimeField(
                blank=True,
                help_text="when correlation first changed the events since interface discovery last derived its hops",
                null=True,
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="transaction", name="txn_updated_idx"),
                migrations.AddIndex(model_name="transaction", index=INDEX),
            ],
            database_operations=[migrations.RunPython(create, drop)],
        ),
    ]
