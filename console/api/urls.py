from django.urls import path
from rest_framework.routers import SimpleRouter

from console.api.views import (
    AuditEntryViewSet,
    EvidencePackageCreateView,
    EvidencePackageView,
    LineageView,
    MeView,
)

router = SimpleRouter()
router.register("audit-entries", AuditEntryViewSet, basename="audit-entry")

urlpatterns = [
    path("me/", MeView.as_view(), name="api-me"),
    path("lineage/", LineageView.as_view(), name="api-lineage"),
    path("evidence-packages/", EvidencePackageCreateView.as_view(), name="api-evidence-package-create"),
    path("evidence-packages/<uuid:job_id>/", EvidencePackageView.as_view(), name="api-evidence-package"),
    *router.urls,
]
