"""On PostgreSQL, turn the (still empty) event table into one partitioned by receive time.

PostgreSQL requires every unique index of a partitioned table, the primary key included, to contain the partition
column: the real key is (id, received_at), while Django keeps `id` as the model's primary key. Rows referring to an
event therefore use plain columns without a database foreign key.
"""

from django.db import migrations

TO_PARTITIONED = """
ALTER TABLE transactions_event RENAME TO transactions_event_unpartitioned;
CREATE TABLE transactions_event (
    LIKE transactions_event_unpartitioned INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS
) PARTITION BY RANGE (received_at);
DROP TABLE transactions_event_unpartitioned CASCADE;
ALTER TABLE transactions_event ADD PRIMARY KEY (id, received_at);
ALTER TABLE transactions_event ADD CONSTRAINT transactions_event_source_id_fk
    FOREIGN KEY (source_id) REFERENCES transactions_ingestsource (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE transactions_event ADD CONSTRAINT transactions_event_batch_id_fk
    FOREIGN KEY (batch_id) REFERENCES transactions_ingestbatch (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX event_trace_idx ON transactions_event (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX event_batch_idx ON transactions_event (batch_id);
CREATE INDEX transactions_event_source_id_idx ON transactions_event (source_id);
CREATE TABLE transactions_event_default PARTITION OF transactions_event DEFAULT;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TO_PARTITIONED, params=None)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0001_ingest")]
    # Going back would need the data copied out of the partitions; drop and re-migrate instead.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
