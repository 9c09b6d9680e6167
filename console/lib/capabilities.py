"""Role capabilities as Django permission names, defined at the bottom so every app can check them.

The `console.Capability` model anchors them as permissions (app label `console`); apps import the constants here
rather than spelling `"console.<codename>"` themselves, so no lower app depends on a string owned by the top layer.
"""

APP_LABEL = "console"

# codename -> description, in the order the admin lists them.
CAPABILITIES: dict[str, str] = {
    "view_transactions": "Read transactions and their timelines",
    "view_cases": "Read exception cases",
    "act_on_cases": "Act on cases in the queues one belongs to",
    "act_on_all_queues": "Act on cases in every queue",
    "edit_rules": "Edit taxonomy, classification, routing, queues, processes, SLAs and ROI assumptions",
    "view_dashboards": "See SLA and ROI dashboards",
    "view_audit": "Read the audit trail",
    "export_lineage": "Export approval lineage and evidence",
    "manage_ingest": "Manage ingest sources, tokens, aliases, extraction and redaction rules",
    "replay_dead_letters": "Browse and replay dead-lettered records",
    "manage_users": "Manage users and groups",
}

VIEW_TRANSACTIONS = f"{APP_LABEL}.view_transactions"
VIEW_CASES = f"{APP_LABEL}.view_cases"
ACT_ON_CASES = f"{APP_LABEL}.act_on_cases"
ACT_ON_ALL_QUEUES = f"{APP_LABEL}.act_on_all_queues"
EDIT_RULES = f"{APP_LABEL}.edit_rules"
VIEW_DASHBOARDS = f"{APP_LABEL}.view_dashboards"
VIEW_AUDIT = f"{APP_LABEL}.view_audit"
EXPORT_LINEAGE = f"{APP_LABEL}.export_lineage"
MANAGE_INGEST = f"{APP_LABEL}.manage_ingest"
REPLAY_DEAD_LETTERS = f"{APP_LABEL}.replay_dead_letters"
MANAGE_USERS = f"{APP_LABEL}.manage_users"
