from rest_framework.routers import SimpleRouter

from exceptions.api.outbound import ReplayTargetViewSet, WebhookViewSet
from exceptions.api.views import CaseViewSet

router = SimpleRouter()
router.register("cases", CaseViewSet, basename="api-case")
router.register("replay-targets", ReplayTargetViewSet, basename="api-replay-target")
router.register("webhooks", WebhookViewSet, basename="api-webhook")

urlpatterns = router.urls
