"""Named filters a user saves on a list page (transactions, queues...) and opens again with one click."""

from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.db import models

# Paging positions and output formats belong to one visit, not to a saved view.
TRANSIENT_PARAMS = {"cursor", "before", "format", "page", "csrfmiddlewaretoken", "name"}


class SavedView(models.Model):
    """A user's named filter for one list page."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    page = models.CharField(max_length=50)
    name = models.CharField(max_length=80)
    query = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "console"
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "page", "name"], name="saved_view_unique_name")]

    def __str__(self) -> str:
        return self.name


def clean_query(query: str) -> str:
    return urlencode([(k, v) for k, v in parse_qsl(query) if k not in TRANSIENT_PARAMS and v != ""])


def saved_view_list(*, user: object, page: str) -> models.QuerySet[SavedView]:
    return SavedView.objects.filter(user=user, page=page)
