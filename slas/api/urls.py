from django.urls import path
from rest_framework.routers import SimpleRouter

from slas.api.monitors import EvidenceMonitorViewSet, MonitorListView, VolumeMonitorViewSet
from slas.api.views import SlaClockViewSet, SlaDefinitionViewSet

router = SimpleRouter()
router.register("sla-definitions", SlaDefinitionViewSet, basename="api-sla-definition")
router.register("sla-clocks", SlaClockViewSet, basename="api-sla-clock")
router.register("monitors/volume", VolumeMonitorViewSet, basename="api-volume-monitor")
router.register("monitors/evidence", EvidenceMonitorViewSet, basename="api-evidence-monitor")

urlpatterns = [path("monitors/", MonitorListView.as_view(), name="api-monitor-list"), *router.urls]
