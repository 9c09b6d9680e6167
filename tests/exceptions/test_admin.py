"""The admin inspects the taxonomy, rules, queues and cases; it changes nothing (the audited services do)."""

import pytest
from django.contrib.auth import get_user_model

from exceptions.models import Case, Category, ClassificationRule, Queue, RoutingRule
from tests.factories import failure


@pytest.mark.django_db
def test_configuration_and_cases_are_shown_read_only(client, raise_failures):
    raise_failures(failure(message="credit limit exceeded for ACME"))
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "x"))
    case = Case.objects.get()
    rows = [
        ("category", Category.objects.first()),
        ("classificationrule", ClassificationRule.objects.first()),
        ("routingrule", RoutingRule.objects.first()),
        ("queue", Queue.objects.first()),
        ("case", case),
    ]
    for model, obj in rows:
        assert client.get(f"/admin/exceptions/{model}/").status_code == 200
        assert client.get(f"/admin/exceptions/{model}/{obj.pk}/change/").status_code == 200
        assert client.get(f"/admin/exceptions/{model}/add/").status_code == 403
        assert client.post(f"/admin/exceptions/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert case.title in client.get("/admin/exceptions/case/").content.decode()
    # A POST to the change page saves nothing: a case changes through its services (version, permission, audit).
    client.post(f"/admin/exceptions/case/{case.pk}/change/", {"title": "renamed", "status": "resolved"})
    assert Case.objects.get(pk=case.pk).title == case.title
