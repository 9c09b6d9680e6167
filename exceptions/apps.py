from django.apps import AppConfig

from console.lib.capabilities import VIEW_CASES


class ExceptionsConfig(AppConfig):
    name = "exceptions"
    verbose_name = "Exceptions and cases"

    def ready(self) -> None:
        from console.lib.navigation import register_nav_item
        from console.lib.panels import register_panel
        from exceptions import receivers  # noqa: F401 - connects the signal receivers
        from exceptions.views.manage import register_navigation
        from exceptions.views.triage import transaction_cases_panel

        register_nav_item("Operations", "Queues", "queue-list", VIEW_CASES, 10)
        register_nav_item("Operations", "Notifications", "notification-list", VIEW_CASES, 90)
        # The transactions app's page shows this app's cases without importing it (imports point down only).
        register_panel("transaction_detail", transaction_cases_panel)
        register_navigation()
