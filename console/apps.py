from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

from console.lib.capabilities import EDIT_RULES, MANAGE_INGEST, MANAGE_USERS, VIEW_AUDIT
from console.lib.dbpool import recent_check_install


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from console import receivers  # noqa: F401 - connects the audit receivers
        from console.lib.navigation import register_nav_item

        post_migrate.connect(_sync_roles_after_migrate, sender=self)
        connection_created.connect(recent_check_install, dispatch_uid="console.dbpool")
        register_nav_item("Overview", "Home", "home", permission=None, order=0)
        # Compliance (and admin) find the lineage under Compliance; managers reach it from their section, through the
        # segregation-of-duties rules they keep, so that their navigation stays the three sections they work in.
        register_nav_item("Compliance", "Lineage", "lineage", permission=VIEW_AUDIT, order=10)
        register_nav_item("Management", "Lineage and SoD rules", "sod-rule-list", permission=EDIT_RULES, order=80)
        register_nav_item("Compliance", "Audit trail", "audit-list", permission=VIEW_AUDIT, order=90)
        register_nav_item("Integration", "API docs", "api-docs", permission=MANAGE_INGEST, order=90)
        register_nav_item("Administration", "Users and groups", "admin:auth_user_changelist", MANAGE_USERS, 10)


def _sync_roles_after_migrate(**kwargs: object) -> None:
    from console.roles import sync_role_groups

    sync_role_groups()
