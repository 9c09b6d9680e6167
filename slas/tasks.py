"""Thin Celery tasks of the slas app: they call a service; running one twice is harmless."""

from celery import shared_task

from slas.services.rollups import rollups_refresh_recent


@shared_task
def refresh_dashboard_rollups() -> int:
    """Recompute today's and yesterday's rollups (each day replaced whole, so a repeated run changes nothing)."""
    return rollups_refresh_recent()
