from django.db import migrations, models

INDEX = models.Index(fields=["updated_at"], name="txn_updated_idx")


def create(apps, schema_editor):
    model = apps.get_model("transactions", "Transaction")
    if schema_editor.connection.vendor == "postgresql":
        # Built without blocking writes: on an installation with millions of transactions a plain CREATE INDEX holds
        # correlation (which updates transactions) for as long as the build takes.
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS txn_updated_idx ON {model._meta.db_table} (updated_at)"
        )
    else:
        schema_editor.add_index(model, INDEX)


def drop(apps, schema_editor):
    model = apps.get_model("transactions", "Transaction")
    schema_editor.remove_index(model, INDEX)


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("transactions", "0009_integration_map"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="transaction", index=INDEX)],
            database_operations=[migrations.RunPython(create, drop)],
        ),
    ]
