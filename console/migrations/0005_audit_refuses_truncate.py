"""On PostgreSQL the audit table also refuses TRUNCATE (the row triggers of 0002 do not fire for it)."""

from django.db import migrations

CREATE = """
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON console_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION closeloop_audit_append_only();
"""
DROP = "DROP TRIGGER IF EXISTS audit_no_truncate ON console_auditentry;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("console", "0004_sod_rules_and_chain_checks")]
    operations = [migrations.RunPython(forwards, backwards)]
