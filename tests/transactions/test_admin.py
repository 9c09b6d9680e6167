"""The admin inspects ingest sources, tokens, dead letters and processes; it changes nothing (services do)."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.factories import reference_data_load
from transactions.choices import Channel
from transactions.models import DeadLetter, IngestToken, ProcessDefinition
from transactions.services import ingest_token_create


@pytest.fixture
def admin_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "x"))
    return client


@pytest.mark.django_db
def test_sources_and_tokens_are_shown_without_their_digests(admin_client, source):
    token, _ = ingest_token_create(source=source, actor="system:test", label="gateway")
    source_page = admin_client.get(f"/admin/transactions/ingestsource/{source.pk}/change/").content.decode()
    token_page = admin_client.get(f"/admin/transactions/ingesttoken/{token.pk}/change/").content.decode()
    assert "gateway" in source_page and "gateway" in token_page and token.prefix in token_page
    assert token.digest not in source_page and token.digest not in token_page
    assert "digest" not in token_page.lower()


@pytest.mark.django_db
def test_nothing_can_be_added_changed_or_deleted_here(admin_client, source):
    reference_data_load()
    token, _ = ingest_token_create(source=source, actor="system:test")
    letter = DeadLetter.objects.create(
        source=source, channel=Channel.NATIVE, received_at=timezone.now(), reason="currency is bad", raw={"x": 1}
    )
    process = ProcessDefinition.objects.order_by("pk").first()
    rows = [("ingestsource", source.pk), ("ingesttoken", token.pk), ("deadletter", letter.pk)]
    for model, pk in [*rows, ("processdefinition", process.pk)]:
        assert admin_client.get(f"/admin/transactions/{model}/").status_code == 200
        assert admin_client.get(f"/admin/transactions/{model}/{pk}/change/").status_code == 200
        assert admin_client.get(f"/admin/transactions/{model}/add/").status_code == 403
        assert admin_client.post(f"/admin/transactions/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403
    assert "currency is bad" in admin_client.get("/admin/transactions/deadletter/").content.decode()
    assert (
        process.steps.first().name
        in admin_client.get(f"/admin/transactions/processdefinition/{process.pk}/change/").content.decode()
    )
    # A POST to the change page saves nothing either.
    admin_client.post(f"/admin/transactions/ingesttoken/{token.pk}/change/", {"label": "changed"})
    assert IngestToken.objects.get(pk=token.pk).label == ""
