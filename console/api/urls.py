from django.urls import path
from rest_framework.routers import SimpleRouter

from console.api.views import AuditEntryViewSet, LineageView, MeView

router = SimpleRouter()
router.register("audit-entries", AuditEntryViewSet, basename="audit-entry")

urlpatterns = [
    path("me/", MeView.as_view(), name="api-me"),
    path("lineage/", LineageView.as_view(), name="api-lineage"),
    *router.urls,
]
