from django.urls import path
from rest_framework.routers import SimpleRouter

from transactions.api.ingest import CloudEventsView, NativeEventsView
from transactions.api.views import TransactionViewSet

router = SimpleRouter()
router.register("transactions", TransactionViewSet, basename="api-transaction")

urlpatterns = [
    path("events", NativeEventsView.as_view(), name="api-events-ingest"),
    path("cloudevents", CloudEventsView.as_view(), name="api-cloudevents-ingest"),
    *router.urls,
]
