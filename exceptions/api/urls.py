from rest_framework.routers import SimpleRouter

from exceptions.api.outbound import ReplayTargetViewSet, WebhookViewSet
from exceptions.api.queues import QueueViewSet
from exceptions.api.reconciliation import ReconciliationResultViewSet, ReconciliationRuleViewSet
from exceptions.api.rules import ClassificationRuleViewSet, RoutingRuleViewSet
from exceptions.api.views import CaseViewSet

router = SimpleRouter()
router.register("cases", CaseViewSet, basename="api-case")
router.register("classification-rules", ClassificationRuleViewSet, basename="api-classification-rule")
router.register("routing-rules", RoutingRuleViewSet, basename="api-routing-rule")
router.register("queues", QueueViewSet, basename="api-queue")
router.register("reconciliation-rules", ReconciliationRuleViewSet, basename="api-reconciliation-rule")
router.register("reconciliation-results", ReconciliationResultViewSet, basename="api-reconciliation-result")
router.register("replay-targets", ReplayTargetViewSet, basename="api-replay-target")
router.register("webhooks", WebhookViewSet, basename="api-webhook")

urlpatterns = router.urls
