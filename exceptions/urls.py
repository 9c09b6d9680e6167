"""The exceptions app's console pages (HTML); the root urlconf includes them. The API has its own in api/urls.py."""

from django.urls import URLPattern, path

from exceptions.views import cases, learning, manage, outbound, reconciliation, reconciliation_page, triage

# Fixed paths such as /queues/manage/ come before the triage pages' /queues/<slug>/.
urlpatterns: list[URLPattern] = [
    path("taxonomy/", manage.taxonomy, name="taxonomy"),
    path("taxonomy/gap/", manage.taxonomy_gap, name="taxonomy-gap"),
    path("taxonomy/categories/new/", manage.category_create, name="category-create"),
    path("taxonomy/categories/<int:category_id>/", manage.category_edit, name="category-edit"),
    path("taxonomy/rules/", manage.classification_rule_list, name="classification-rule-list"),
    path("taxonomy/rules/new/", manage.classification_rule_create, name="classification-rule-create"),
    path("taxonomy/rules/order/", manage.classification_rule_reorder, name="classification-rule-reorder"),
    path("taxonomy/rules/<int:rule_id>/", manage.classification_rule_edit, name="classification-rule-edit"),
    path(
        "taxonomy/rules/<int:rule_id>/active/", manage.classification_rule_activate, name="classification-rule-activate"
    ),
    path("taxonomy/rules/<int:rule_id>/delete/", manage.classification_rule_delete, name="classification-rule-delete"),
    path(
        "taxonomy/rules/<int:rule_id>/reclassify/",
        learning.classification_rule_reclassify,
        name="classification-rule-reclassify",
    ),
    path("routing/", manage.routing_rule_list, name="routing-rule-list"),
    path("routing/new/", manage.routing_rule_create, name="routing-rule-create"),
    path("routing/reroute/", manage.routing_reroute, name="routing-reroute"),
    path("routing/<int:rule_id>/", manage.routing_rule_edit, name="routing-rule-edit"),
    path("routing/<int:rule_id>/delete/", manage.routing_rule_delete, name="routing-rule-delete"),
    path("reconciliation/", reconciliation_page.reconciliation_page, name="reconciliation"),
    path("reconciliation/results/", reconciliation_page.reconciliation_drill, name="reconciliation-drill"),
    path("reconciliation/rules/", reconciliation.reconciliation_rule_list, name="reconciliation-rule-list"),
    path("reconciliation/rules/new/", reconciliation.reconciliation_rule_create, name="reconciliation-rule-create"),
    path(
        "reconciliation/rules/<int:rule_id>/", reconciliation.reconciliation_rule_edit, name="reconciliation-rule-edit"
    ),
    path(
        "reconciliation/rules/<int:rule_id>/active/",
        reconciliation.reconciliation_rule_activate,
        name="reconciliation-rule-activate",
    ),
    path(
        "reconciliation/rules/<int:rule_id>/delete/",
        reconciliation.reconciliation_rule_delete,
        name="reconciliation-rule-delete",
    ),
    path("reconciliation/reference/", reconciliation.reconciliation_reference, name="reconciliation-reference"),
    path("reconciliation/fx-rates/<int:rate_id>/delete/", reconciliation.fx_rate_delete, name="fx-rate-delete"),
    path("reconciliation/mappings/new/", reconciliation.value_mapping_create, name="value-mapping-create"),
    path("reconciliation/mappings/<int:mapping_id>/", reconciliation.value_mapping_edit, name="value-mapping-edit"),
    path(
        "reconciliation/mappings/<int:mapping_id>/delete/",
        reconciliation.value_mapping_delete,
        name="value-mapping-delete",
    ),
    path("queues/manage/", manage.queue_manage_list, name="queue-manage-list"),
    path("queues/manage/new/", manage.queue_manage_create, name="queue-manage-create"),
    path("queues/manage/<int:queue_id>/", manage.queue_manage_edit, name="queue-manage-edit"),
    path("queues/manage/<int:queue_id>/members/", manage.queue_member_add, name="queue-member-add"),
    path(
        "queues/manage/<int:queue_id>/members/<int:user_id>/remove/",
        manage.queue_member_remove,
        name="queue-member-remove",
    ),
    path("queues/", triage.queue_list, name="queue-list"),
    path("queues/<slug:slug>/", triage.queue_detail, name="queue-detail"),
    path("queues/<slug:slug>/bulk/", triage.queue_bulk, name="queue-bulk"),
    path("cases/<int:case_id>/", cases.case_detail, name="case-detail"),
    path("cases/<int:case_id>/assign/", cases.case_assign_view, name="case-assign"),
    path("cases/<int:case_id>/comment/", cases.case_comment_view, name="case-comment"),
    path("cases/<int:case_id>/status/", cases.case_transition_view, name="case-transition"),
    path("cases/<int:case_id>/snooze/", cases.case_snooze_view, name="case-snooze"),
    path("cases/<int:case_id>/merge/", cases.case_merge_view, name="case-merge"),
    path("cases/<int:case_id>/split/", cases.case_split_view, name="case-split"),
    path("cases/<int:case_id>/replay/", cases.case_replay_view, name="case-replay"),
    path("cases/<int:case_id>/classify/", learning.case_classify, name="case-classify"),
    path("cases/<int:case_id>/timeline/<int:txn_id>/", cases.case_timeline, name="case-timeline"),
    path("outbound/replay-targets/", outbound.replay_target_list, name="replay-target-list"),
    # The same page under a second name, so that the menu shows it to managers and integration engineers alike.
    path("outbound/replay-targets/", outbound.replay_target_list, name="replay-target-list-managers"),
    path("outbound/replay-targets/new/", outbound.replay_target_create, name="replay-target-create"),
    path("outbound/replay-targets/<int:target_id>/", outbound.replay_target_edit, name="replay-target-edit"),
    path(
        "outbound/replay-targets/<int:target_id>/active/",
        outbound.replay_target_activate,
        name="replay-target-activate",
    ),
    path(
        "outbound/replay-targets/<int:target_id>/dry-run/", outbound.replay_target_dry_run, name="replay-target-dry-run"
    ),
    path("outbound/replay-targets/<int:target_id>/log/", outbound.replay_target_log, name="replay-target-log"),
    path("outbound/webhooks/", outbound.webhook_list, name="webhook-list"),
    path("outbound/webhooks/new/", outbound.webhook_create, name="webhook-create"),
    path("outbound/webhooks/<int:webhook_id>/", outbound.webhook_edit, name="webhook-edit"),
    path("outbound/webhooks/<int:webhook_id>/active/", outbound.webhook_activate, name="webhook-activate"),
    path("outbound/webhooks/<int:webhook_id>/dry-run/", outbound.webhook_dry_run, name="webhook-dry-run"),
    path("outbound/webhooks/<int:webhook_id>/log/", outbound.webhook_log, name="webhook-log"),
    path("notifications/", cases.notification_list, name="notification-list"),
    path("notifications/read/", cases.notification_read, name="notification-read"),
]
