"""Console pages of the slas app (HTML)."""

from django.urls import path

from slas.views import dashboards

urlpatterns = [
    path("slas/", dashboards.sla_dashboard, name="sla-dashboard"),
    path("slas/drill/clocks/", dashboards.drill_list, {"drill": "clocks"}, name="sla-drill-clocks"),
    path("roi/", dashboards.roi_dashboard, name="roi-dashboard"),
    path("roi/assumptions/<slug:key>/", dashboards.roi_assumption_edit, name="roi-assumption-edit"),
    path("roi/drill/transactions/", dashboards.drill_list, {"drill": "transactions"}, name="roi-drill-transactions"),
    path("roi/drill/occurrences/", dashboards.drill_list, {"drill": "occurrences"}, name="roi-drill-occurrences"),
    path("roi/drill/cases/", dashboards.drill_list, {"drill": "cases"}, name="roi-drill-cases"),
    path("roi/drill/replays/", dashboards.drill_list, {"drill": "replays"}, name="roi-drill-replays"),
]
