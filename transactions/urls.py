from django.urls import path

from transactions.api.ingest import OtlpLogsView, OtlpTracesView

# OTLP/HTTP exporters append these fixed paths to their endpoint, so they live at the root.
otlp_urlpatterns = [
    path("v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
    path("v1/logs", OtlpLogsView.as_view(), name="otlp-logs"),
]
