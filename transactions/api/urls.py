from django.urls import path
from rest_framework.routers import SimpleRouter

from transactions.api.ingest import CloudEventsView, NativeEventsView
from transactions.api.processes import ProcessDefinitionViewSet
from transactions.api.sources import DeadLetterViewSet, IngestSourceViewSet
from transactions.api.views import InterfaceViewSet, SystemViewSet, TransactionViewSet

router = SimpleRouter()
router.register("transactions", TransactionViewSet, basename="api-transaction")
router.register("processes", ProcessDefinitionViewSet, basename="api-process")
router.register("ingest-sources", IngestSourceViewSet, basename="api-ingest-source")
router.register("dead-letters", DeadLetterViewSet, basename="api-dead-letter")
router.register("systems", SystemViewSet, basename="api-system")
router.register("interfaces", InterfaceViewSet, basename="api-interface")

urlpatterns = [
    path("events", NativeEventsView.as_view(), name="api-events-ingest"),
    path("cloudevents", CloudEventsView.as_view(), name="api-cloudevents-ingest"),
    *router.urls,
]
