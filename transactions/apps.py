from django.apps import AppConfig

from console.lib.capabilities import EDIT_RULES, MANAGE_INGEST, REPLAY_DEAD_LETTERS, VIEW_TRANSACTIONS
from console.lib.navigation import register_nav_item


class TransactionsConfig(AppConfig):
    name = "transactions"
    verbose_name = "Transactions"

    def ready(self) -> None:
        register_nav_item("Operations", "Transactions", "transaction-list", VIEW_TRANSACTIONS, 20)
        register_nav_item("Management", "Processes", "process-list", EDIT_RULES, 50)
        manage, replay = MANAGE_INGEST, REPLAY_DEAD_LETTERS
        register_nav_item("Integration", "Feed health", "feed-health", manage, 10)
        # Managers and integration engineers both look after interfaces, so it sits in the section both see (one item:
        # a label twice in the navigation confuses); others may open the page from links.
        register_nav_item("Operations", "Integration map", "integration-map", (manage, EDIT_RULES), 40)
        register_nav_item("Integration", "Ingest sources", "ingest-source-list", manage, 20)
        register_nav_item("Integration", "Extraction rules", "extraction-rule-list", manage, 30)
        register_nav_item("Integration", "Redaction rules", "redaction-rule-list", manage, 40)
        register_nav_item("Integration", "Dead letters", "dead-letter-list", replay, 50)
        from transactions import receivers  # noqa: F401 (connects the receivers)
