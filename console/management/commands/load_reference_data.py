from django.core.management.base import BaseCommand

from console.roles import sync_role_groups


class Command(BaseCommand):
    help = "Load Closeloop's reference data (role groups and the apps' default rules); safe to run again."

    def handle(self, *args: object, **options: object) -> None:
        sync_role_groups()
        self.stdout.write("role groups: finance_ops, manager, compliance, integration, admin")
