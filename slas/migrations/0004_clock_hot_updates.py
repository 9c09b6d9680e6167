import django.db.models.deletion
from django.db import migrations, models

# The minute pass rewrites live clocks whose indexed columns (status, started_at, ids) mostly stay the same. With
# free space left in each page PostgreSQL updates such rows in place (HOT) without touching any of the table's
# indexes; at the default fillfactor of 100 every rewrite inserts into every index.
FILLFACTOR = 70


def set_fillfactor(apps, schema_editor, value=FILLFACTOR):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE slas_slaclock SET (fillfactor = {int(value)})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE slas_slaclock RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("slas", "0003_evidence_checks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="slaclock",
            name="definition",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="clocks",
                to="slas.sladefinition",
            ),
        ),
        migrations.RunPython(set_fillfactor, reset_fillfactor),
    ]
