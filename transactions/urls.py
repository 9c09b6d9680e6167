"""Routes of the transactions app, mounted at the root: its console pages and the OTLP/HTTP paths."""

from django.urls import path

from transactions.api.ingest import OtlpLogsView, OtlpTracesView
from transactions.views import ingest as ingest_views
from transactions.views import interfaces as interface_views
from transactions.views import processes as process_views
from transactions.views import transactions as transaction_views

urlpatterns = [
    path("transactions/", transaction_views.transaction_list, name="transaction-list"),
    path("transactions/<int:txn_id>/", transaction_views.transaction_detail, name="transaction-detail"),
    path("map/", interface_views.integration_map, name="integration-map"),
    path("map/catalogue/", interface_views.catalogue, name="integration-catalogue"),
    path(
        "map/<str:kind>/<int:obj_id>/edit/",
        interface_views.catalogue_entry_edit,
        name="catalogue-entry-edit",
    ),
    path("ingest/health/", ingest_views.feed_health, name="feed-health"),
    path("ingest/sources/", ingest_views.ingest_source_list, name="ingest-source-list"),
    path("ingest/sources/<int:source_id>/", ingest_views.ingest_source_detail, name="ingest-source-detail"),
    path("ingest/sources/<int:source_id>/tokens/", ingest_views.ingest_token_create, name="ingest-token-create"),
    path(
        "ingest/sources/<int:source_id>/tokens/<int:token_id>/revoke/",
        ingest_views.ingest_token_revoke,
        name="ingest-token-revoke",
    ),
    path("ingest/sources/<int:source_id>/aliases/", ingest_views.source_alias_create, name="source-alias-create"),
    path(
        "ingest/sources/<int:source_id>/aliases/<int:alias_id>/delete/",
        ingest_views.source_alias_delete,
        name="source-alias-delete",
    ),
    path("ingest/extraction-rules/", ingest_views.extraction_rule_list, name="extraction-rule-list"),
    path("ingest/extraction-rules/new/", ingest_views.extraction_rule_create, name="extraction-rule-create"),
    path("ingest/extraction-rules/test/", ingest_views.extraction_rule_test, name="extraction-rule-test"),
    path("ingest/extraction-rules/<int:rule_id>/", ingest_views.extraction_rule_edit, name="extraction-rule-edit"),
    path(
        "ingest/extraction-rules/<int:rule_id>/active/",
        ingest_views.extraction_rule_activate,
        name="extraction-rule-activate",
    ),
    path(
        "ingest/extraction-rules/<int:rule_id>/delete/",
        ingest_views.extraction_rule_delete,
        name="extraction-rule-delete",
    ),
    path("ingest/redaction-rules/", ingest_views.redaction_rule_list, name="redaction-rule-list"),
    path("ingest/redaction-rules/new/", ingest_views.redaction_rule_create, name="redaction-rule-create"),
    path("ingest/redaction-rules/<int:rule_id>/", ingest_views.redaction_rule_edit, name="redaction-rule-edit"),
    path(
        "ingest/redaction-rules/<int:rule_id>/delete/", ingest_views.redaction_rule_delete, name="redaction-rule-delete"
    ),
    path("dead-letters/", ingest_views.dead_letter_list, name="dead-letter-list"),
    path("dead-letters/<int:dead_letter_id>/", ingest_views.dead_letter_detail, name="dead-letter-detail"),
    path("dead-letters/<int:dead_letter_id>/replay/", ingest_views.dead_letter_replay, name="dead-letter-replay"),
    path("dead-letters/<int:dead_letter_id>/repair/", ingest_views.dead_letter_repair, name="dead-letter-repair"),
    path("dead-letters/<int:dead_letter_id>/discard/", ingest_views.dead_letter_discard, name="dead-letter-discard"),
    path("processes/", process_views.process_list, name="process-list"),
    path("processes/new/", process_views.process_create, name="process-create"),
    path("processes/<int:process_id>/", process_views.process_edit, name="process-edit"),
    # OTLP/HTTP exporters append these fixed paths to their endpoint, so they live at the root (this urlconf is
    # mounted there).
    path("v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
    path("v1/logs", OtlpLogsView.as_view(), name="otlp-logs"),
]
