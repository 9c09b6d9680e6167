from django.apps import AppConfig

from console.lib.capabilities import VIEW_DASHBOARDS


class SlasConfig(AppConfig):
    name = "slas"
    verbose_name = "Business SLAs"

    def ready(self) -> None:
        from console.lib.navigation import register_nav_item

        # Managers use them; compliance and admin hold the capability too and read them (edits need EDIT_RULES).
        register_nav_item("Management", "SLAs", "sla-dashboard", VIEW_DASHBOARDS, 1)
        register_nav_item("Management", "ROI", "roi-dashboard", VIEW_DASHBOARDS, 2)
