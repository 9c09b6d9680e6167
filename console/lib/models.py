"""Base models shared by every app, and what every app does alike with its models."""

from typing import TypeVar

from django.db import models
from django.db.models import QuerySet

M = TypeVar("M", bound=models.Model)


class TimeStampedModel(models.Model):
    """Adds created/updated timestamps."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def merged_chain_end(obj: M, *, queryset: QuerySet[M] | None = None, field: str = "merged_into") -> M:
    """The object that `obj` was merged into, following the `field` chain to its end (`obj` itself when not merged).

    Each hop is read through `queryset` (e.g. `select_for_update()` to lock the survivor, or `select_related(...)` for
    the page showing it). A chain that loops back stops at the last object not seen before, instead of spinning.
    """
    rows = queryset if queryset is not None else type(obj)._base_manager.all()
    attname = obj._meta.get_field(field).attname
    seen = {obj.pk}
    while (next_pk := getattr(obj, attname)) is not None and next_pk not in seen:
        seen.add(next_pk)
        obj = rows.get(pk=next_pk)
    return obj


def merged_chain_end_id(queryset: QuerySet, pk: int, *, field: str = "merged_into") -> int:
    """The id at the end of `pk`'s merge chain, reading only ids (for a redirect to the survivor's page)."""
    attname = queryset.model._meta.get_field(field).attname
    seen = {pk}
    live = pk
    while (next_pk := queryset.values_list(attname, flat=True).get(pk=live)) is not None and next_pk not in seen:
        seen.add(next_pk)
        live = next_pk
    return live
