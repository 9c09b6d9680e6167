"""Every list endpoint of /api/v1/ refuses a query parameter it does not read with a 400 naming it (a misspelt filter
used to answer the whole unfiltered list), and still takes its filters, pagination and `format`.

The lists are found by walking the URL configuration for viewset routes mapped to `list`, so that a list added later is
covered without touching this test."""

from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from console.lib.api import list_parameters
from transactions.api.views import TransactionViewSet


def _list_routes(patterns: list, prefix: str = "") -> Iterator[tuple[str, type]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
        if isinstance(pattern, URLResolver):
            yield from _list_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            actions = getattr(pattern.callback, "actions", None) or {}
            if actions.get("get") == "list" and route.startswith("api/v1/"):
                yield "/" + route, pattern.callback.cls


LIST_ROUTES = sorted({url: cls for url, cls in _list_routes(get_resolver().url_patterns)}.items())


def test_the_walk_finds_the_lists():
    urls = {url for url, _ in LIST_ROUTES}
    assert {
        "/api/v1/cases/",
        "/api/v1/transactions/",
        "/api/v1/queues/",
        "/api/v1/classification-rules/",
        "/api/v1/reconciliation-rules/",
        "/api/v1/reconciliation-results/",
    } <= urls


@pytest.fixture
def admin_api(role_user) -> APIClient:
    user = role_user("admin", username="root")
    user.is_superuser = True
    user.save()
    client = APIClient()
    client.force_authenticate(user)
    return client


LIST_CASES = [
    pytest.param(
        url,
        view_class,
        id=url,
    )
    for url, view_class in LIST_ROUTES
]


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "view_class"), LIST_CASES)
def test_an_unknown_query_parameter_is_refused_by_name(admin_api, url, view_class):
    response = admin_api.get(url, {"not_a_filter": "posting", "page_size": "5"})
    assert response.status_code == 400, response.content
    # The contract is a 400 naming the parameter in `detail`; the shared backend also lists it as a field problem.
    detail = response.json()["detail"]
    assert "unknown query parameter" in detail and "not_a_filter" in detail

    both = admin_api.get(url, {"colour": "red", "sort": "x"})
    assert both.status_code == 400 and "colour, sort" in both.json()["detail"]

    assert admin_api.get(url, {"page_size": "5", "format": "json"}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/transactions/", "/api/v1/queues/", "/api/v1/sla-definitions/"])
def test_a_search_where_the_list_has_none_is_refused(admin_api, url):
    response = admin_api.get(url, {"q": "posting"})
    assert response.status_code == 400 and "unknown query parameter: q" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "known"),
    [("/api/v1/monitors/", {"type": "volume", "q": "x"}), ("/api/v1/lineage/", {"business_key": "C-1"})],
)
def test_list_views_outside_the_routers_refuse_unknown_parameters_too(admin_api, url, known):
    response = admin_api.get(url, {**known, "not_a_filter": "1"})
    assert response.status_code == 400 and "unknown query parameter: not_a_filter" in response.json()["detail"]
    assert admin_api.get(url, {**known, "format": "json"}).status_code == 200


@pytest.mark.django_db
def test_a_list_still_takes_its_filters_and_its_cursor(admin_api):
    assert admin_api.get("/api/v1/cases/", {"status": "open", "q": "posting"}).status_code == 200
    assert admin_api.get("/api/v1/transactions/", {"business_key": "C-1", "has_errors": "true"}).status_code == 200
    assert admin_api.get("/api/v1/cases/", {"cursor": "bad"}).status_code == 404  # a stale cursor, as before


@pytest.mark.django_db
def test_the_allowed_parameters_are_named_in_the_answer(admin_api):
    detail = admin_api.get("/api/v1/transactions/", {"bogus": "1"}).json()["detail"]
    assert "business_key" in detail and "cursor" in detail and "page_size" in detail


def test_list_parameters_reads_filters_and_paginator(rf):
    view = TransactionViewSet()
    view.request, view.action, view.format_kwarg, view.kwargs = rf.get("/"), "list", None, {}
    allowed = list_parameters(view, view.request)
    assert {"business_key", "trace_id", "cursor", "page_size", "format"} <= allowed and "q" not in allowed
