from django.core.management.base import BaseCommand

from console.roles import sync_role_groups
from exceptions.reference import exceptions_reference_data_load
from slas.reference import monitors_reference_data_load, slas_reference_data_load
from transactions.reference import ingest_reference_data_load, process_reference_data_load


class Command(BaseCommand):
    help = "Load Closeloop's reference data (role groups and the apps' default rules); safe to run again."

    def handle(self, *args: object, **options: object) -> None:
        sync_role_groups()
        self.stdout.write("role groups: finance_ops, manager, compliance, integration, admin")
        created = ingest_reference_data_load()
        self.stdout.write(
            f"ingest rules: {created['extraction_rules']} extraction and {created['redaction_rules']} redaction created"
        )
        self.stdout.write(f"process definitions: {process_reference_data_load()} created")
        created = exceptions_reference_data_load()
        self.stdout.write(
            "exceptions: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in created.items()) + " created"
        )
        created = {**slas_reference_data_load(), **monitors_reference_data_load()}
        self.stdout.write(
            "slas: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in created.items()) + " created"
        )
