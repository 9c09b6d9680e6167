from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from console.views import audit, errors, health, home, lineage, saved_views

handler500 = errors.handler500

api_v1 = [
    path("", include("console.api.urls")),
    path("", include("transactions.api.urls")),
    path("", include("exceptions.api.urls")),
    path("", include("slas.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    # First: senders post here hundreds of times a second, and Django tries the patterns in order (the pages' hundred
    # patterns before it cost a single-event request about 0.7 ms).
    path("api/v1/", include(api_v1)),
    path("", home.home, name="home"),
    path("audit/", audit.audit_list, name="audit-list"),
    path("audit/verify/", audit.audit_verify_now, name="audit-verify"),
    path("lineage/", lineage.lineage_page, name="lineage"),
    path("lineage/export/", lineage.lineage_export, name="lineage-export"),
    path("lineage/samples/", lineage.lineage_sample_create, name="lineage-sample-create"),
    path("lineage/samples/<uuid:job_id>/", lineage.evidence_job_page, name="evidence-job"),
    path("lineage/samples/<uuid:job_id>/download/", lineage.evidence_job_download, name="evidence-job-download"),
    path("lineage/sod-rules/", lineage.sod_rule_list_view, name="sod-rule-list"),
    path("lineage/sod-rules/<int:rule_id>/", lineage.sod_rule_edit, name="sod-rule-edit"),
    path("lineage/sod-rules/<int:rule_id>/delete/", lineage.sod_rule_delete_view, name="sod-rule-delete"),
    path("views/", saved_views.saved_view_create, name="saved-view-create"),
    path("views/<int:view_id>/delete/", saved_views.saved_view_delete_view, name="saved-view-delete"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("transactions.urls")),
    path("", include("exceptions.urls")),
    path("", include("slas.urls")),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
