"""Console pages of the exceptions app (HTML)."""

from exceptions.views import manage, triage

# Fixed paths such as /queues/manage/ come before the triage pages' /queues/<slug>/.
urlpatterns = [*manage.urlpatterns, *triage.urlpatterns]
