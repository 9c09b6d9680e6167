from django.urls import path

from transactions.api.ingest import CloudEventsView, NativeEventsView

urlpatterns = [
    path("events", NativeEventsView.as_view(), name="api-events-ingest"),
    path("cloudevents", CloudEventsView.as_view(), name="api-cloudevents-ingest"),
]
