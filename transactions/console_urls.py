"""Console pages of the transactions app (HTML)."""

from django.urls import path

from transactions import process_views, views

urlpatterns = [
    path("transactions/", views.transaction_list, name="transaction-list"),
    path("transactions/<int:txn_id>/", views.transaction_detail, name="transaction-detail"),
    path("ingest/health/", views.feed_health, name="feed-health"),
    path("ingest/sources/", views.ingest_source_list, name="ingest-source-list"),
    path("ingest/sources/<int:source_id>/", views.ingest_source_detail, name="ingest-source-detail"),
    path("ingest/sources/<int:source_id>/tokens/", views.ingest_token_create, name="ingest-token-create"),
    path(
        "ingest/sources/<int:source_id>/tokens/<int:token_id>/revoke/",
        views.ingest_token_revoke,
        name="ingest-token-revoke",
    ),
    path("ingest/sources/<int:source_id>/aliases/", views.source_alias_create, name="source-alias-create"),
    path(
        "ingest/sources/<int:source_id>/aliases/<int:alias_id>/delete/",
        views.source_alias_delete,
        name="source-alias-delete",
    ),
    path("ingest/extraction-rules/", views.extraction_rule_list, name="extraction-rule-list"),
    path("ingest/extraction-rules/new/", views.extraction_rule_create, name="extraction-rule-create"),
    path("ingest/extraction-rules/test/", views.extraction_rule_test, name="extraction-rule-test"),
    path("ingest/extraction-rules/<int:rule_id>/", views.extraction_rule_edit, name="extraction-rule-edit"),
    path(
        "ingest/extraction-rules/<int:rule_id>/active/", views.extraction_rule_activate, name="extraction-rule-activate"
    ),
    path("ingest/extraction-rules/<int:rule_id>/delete/", views.extraction_rule_delete, name="extraction-rule-delete"),
    path("ingest/redaction-rules/", views.redaction_rule_list, name="redaction-rule-list"),
    path("ingest/redaction-rules/new/", views.redaction_rule_create, name="redaction-rule-create"),
    path("ingest/redaction-rules/<int:rule_id>/", views.redaction_rule_edit, name="redaction-rule-edit"),
    path("ingest/redaction-rules/<int:rule_id>/delete/", views.redaction_rule_delete, name="redaction-rule-delete"),
    path("dead-letters/", views.dead_letter_list, name="dead-letter-list"),
    path("dead-letters/<int:dead_letter_id>/", views.dead_letter_detail, name="dead-letter-detail"),
    path("dead-letters/<int:dead_letter_id>/replay/", views.dead_letter_replay, name="dead-letter-replay"),
    path("dead-letters/<int:dead_letter_id>/repair/", views.dead_letter_repair, name="dead-letter-repair"),
    path("dead-letters/<int:dead_letter_id>/discard/", views.dead_letter_discard, name="dead-letter-discard"),
    *process_views.urlpatterns,
]
