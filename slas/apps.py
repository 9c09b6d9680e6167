from django.apps import AppConfig


class SlasConfig(AppConfig):
    name = "slas"
    verbose_name = "Business SLAs"

    def ready(self) -> None:
        from console.lib.capabilities import VIEW_CASES, VIEW_DASHBOARDS, VIEW_TRANSACTIONS
        from console.lib.navigation import register_nav_item
        from console.lib.panels import register_panel
        from slas import receivers  # noqa: F401 - connects the signal receivers
        from slas.views.panels import queue_at_risk_panel, transaction_clocks_panel

        register_nav_item("Operations", "SLA clocks", "sla-clock-list", VIEW_CASES, 30)
        # The dashboards: managers use them; compliance and admin hold the capability too and read them.
        register_nav_item("Management", "SLAs", "sla-dashboard", VIEW_DASHBOARDS, 1)
        register_nav_item("Management", "ROI", "roi-dashboard", VIEW_DASHBOARDS, 2)
        register_nav_item("Management", "SLA definitions", "sla-definition-list", VIEW_DASHBOARDS, 60)
        register_nav_item("Management", "Business calendars", "sla-calendar-list", VIEW_DASHBOARDS, 65)
        register_nav_item("Operations", "Monitors", "sla-monitor-list", VIEW_TRANSACTIONS, 35)
        # Pages of lower apps show this app's clocks without importing it (imports point down only).
        register_panel("transaction_detail", transaction_clocks_panel, order=40)
        register_panel("queue_detail", queue_at_risk_panel, order=10)
