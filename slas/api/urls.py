from rest_framework.routers import SimpleRouter

from slas.api.views import SlaClockViewSet, SlaDefinitionViewSet

router = SimpleRouter()
router.register("sla-definitions", SlaDefinitionViewSet, basename="api-sla-definition")
router.register("sla-clocks", SlaClockViewSet, basename="api-sla-clock")

urlpatterns = router.urls
