"""Console pages of the exceptions app (HTML)."""

from exceptions.views import manage, triage

urlpatterns = [*triage.urlpatterns, *manage.urlpatterns]
