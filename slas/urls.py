"""Console pages of the slas app, under /slas/ (the path /slas/ itself is the managers' dashboard's)."""

from django.urls import path, register_converter

from slas.views import calendars, clocks, dashboards, definitions, monitors


class MonitorKindConverter:
    """The two kinds of monitor, so that one set of routes serves both."""

    regex = "volume|evidence"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(MonitorKindConverter, "monitor_kind")

urlpatterns = [
    path("slas/definitions/", definitions.definition_list, name="sla-definition-list"),
    path("slas/definitions/new/", definitions.definition_create, name="sla-definition-create"),
    path("slas/definitions/<int:definition_id>/", definitions.definition_edit, name="sla-definition-edit"),
    path(
        "slas/definitions/<int:definition_id>/active/",
        definitions.definition_set_active,
        name="sla-definition-set-active",
    ),
    path("slas/calendars/", calendars.calendar_list, name="sla-calendar-list"),
    path("slas/calendars/new/", calendars.calendar_create, name="sla-calendar-create"),
    path("slas/calendars/<int:calendar_id>/", calendars.calendar_edit, name="sla-calendar-edit"),
    path("slas/calendars/<int:calendar_id>/holidays/", calendars.holiday_import, name="sla-holiday-import"),
    path(
        "slas/calendars/<int:calendar_id>/holidays/<int:holiday_id>/delete/",
        calendars.holiday_delete,
        name="sla-holiday-delete",
    ),
    path("slas/clocks/", clocks.clock_list, name="sla-clock-list"),
    path("slas/monitors/", monitors.monitor_list, name="sla-monitor-list"),
    path("slas/monitors/<monitor_kind:kind>/new/", monitors.monitor_create, name="sla-monitor-create"),
    path("slas/monitors/<monitor_kind:kind>/<int:monitor_id>/", monitors.monitor_detail, name="sla-monitor-detail"),
    path("slas/monitors/<monitor_kind:kind>/<int:monitor_id>/edit/", monitors.monitor_edit, name="sla-monitor-edit"),
    # The dashboards and the lists behind their figures.
    path("slas/", dashboards.sla_dashboard, name="sla-dashboard"),
    path("slas/drill/clocks/", dashboards.drill_list, {"drill": "clocks"}, name="sla-drill-clocks"),
    path("roi/", dashboards.roi_dashboard, name="roi-dashboard"),
    path("roi/assumptions/<slug:key>/", dashboards.roi_assumption_edit, name="roi-assumption-edit"),
    path("roi/drill/transactions/", dashboards.drill_list, {"drill": "transactions"}, name="roi-drill-transactions"),
    path("roi/drill/occurrences/", dashboards.drill_list, {"drill": "occurrences"}, name="roi-drill-occurrences"),
    path("roi/drill/cases/", dashboards.drill_list, {"drill": "cases"}, name="roi-drill-cases"),
    path("roi/drill/replays/", dashboards.drill_list, {"drill": "replays"}, name="roi-drill-replays"),
]
