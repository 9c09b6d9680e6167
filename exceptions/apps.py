from django.apps import AppConfig

from console.lib.capabilities import EDIT_RULES, MANAGE_INGEST, VIEW_CASES, VIEW_DASHBOARDS
from console.lib.navigation import register_nav_item
from console.lib.panels import register_panel


def register_navigation() -> None:
    """Every console menu entry of this app's pages, in one place (see exceptions/urls.py for the pages)."""
    register_nav_item("Operations", "Queues", "queue-list", VIEW_CASES, 10)
    register_nav_item("Operations", "Notifications", "notification-list", VIEW_CASES, 90)
    register_nav_item("Operations", "Reconciliation", "reconciliation", VIEW_CASES, 25)
    register_nav_item("Management", "Taxonomy", "taxonomy", EDIT_RULES, 10)
    # Compliance reads the gap too (what Closeloop cannot classify is a control question), so its own permission.
    register_nav_item("Management", "Taxonomy gap", "taxonomy-gap", VIEW_DASHBOARDS, 15)
    register_nav_item("Management", "Classification rules", "classification-rule-list", EDIT_RULES, 20)
    register_nav_item("Management", "Routing rules", "routing-rule-list", EDIT_RULES, 30)
    register_nav_item("Management", "Queue settings", "queue-manage-list", EDIT_RULES, 40)
    register_nav_item("Management", "Reconciliation rules", "reconciliation-rule-list", EDIT_RULES, 45)
    # Replay targets and webhooks are for integration engineers and managers alike. A menu item has one permission,
    # so each role's section gets an entry (the managers' one under a name of its own, as an admin sees both and no
    # two entries may share a label); the targets page links to the webhooks.
    register_nav_item("Integration", "Replay targets", "replay-target-list", MANAGE_INGEST, 60)
    register_nav_item("Integration", "Webhooks", "webhook-list", MANAGE_INGEST, 70)
    register_nav_item("Management", "Replay targets and webhooks", "replay-target-list-managers", EDIT_RULES, 60)


class ExceptionsConfig(AppConfig):
    name = "exceptions"
    verbose_name = "Exceptions and cases"

    def ready(self) -> None:
        # Imported once the app registry is ready: both modules import models.
        from exceptions import receivers  # noqa: F401 - connects the signal receivers
        from exceptions.views.cases import transaction_cases_panel

        register_navigation()
        # The transactions app's page shows this app's cases without importing it (imports point down only).
        register_panel("transaction_detail", transaction_cases_panel)
