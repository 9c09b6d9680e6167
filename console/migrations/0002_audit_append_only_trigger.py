"""On PostgreSQL the audit table itself refuses UPDATE and DELETE, whatever code or console issues them."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION closeloop_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'console_auditentry is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON console_auditentry
    FOR EACH ROW EXECUTE FUNCTION closeloop_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS audit_append_only ON console_auditentry;
DROP FUNCTION IF EXISTS closeloop_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("console", "0001_audit_trail_and_capabilities")]
    operations = [migrations.RunPython(forwards, backwards)]
