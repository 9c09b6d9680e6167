import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from console.lib.audit import AuditEntry, audit_verify
from console.roles import ROLE_CAPABILITIES, ROLES
from tests.factories import PASSWORD


@pytest.mark.django_db
def test_migrate_creates_each_role_group_with_its_capabilities():
    for role in ROLES:
        group = Group.objects.get(name=role)
        assert set(group.permissions.values_list("codename", flat=True)) == ROLE_CAPABILITIES[role]


@pytest.mark.django_db
def test_login_logout_and_failed_login_are_audited(client, role_user):
    user = role_user("finance_ops", username="olga")
    response = client.post(reverse("login"), {"username": "olga", "password": "wrong"})
    assert response.status_code == 200 and b"did not match" in response.content
    response = client.post(reverse("login"), {"username": "olga", "password": PASSWORD})
    assert response.status_code == 302
    client.post(reverse("logout"))
    actions = list(AuditEntry.objects.values_list("action", "object_id"))
    assert ("auth.login_failed", "olga") in actions
    assert ("auth.login", str(user.pk)) in actions
    assert ("auth.logout", str(user.pk)) in actions
    assert audit_verify().ok


@pytest.mark.django_db
def test_group_membership_changes_are_audited(role_user):
    user = role_user("finance_ops")
    manager = Group.objects.get(name="manager")
    user.groups.add(manager)
    user.groups.remove(manager)
    manager.user_set.add(user)
    manager.user_set.clear()
    actions = list(AuditEntry.objects.filter(action__contains="groups_").values_list("action", "after"))
    assert ("user.groups_added", {"groups": ["manager"]}) in actions
    assert ("user.groups_removed", {"groups": ["manager"]}) in actions
    assert AuditEntry.objects.filter(action="group.members_added", after={"users": [user.username]}).exists()
    assert AuditEntry.objects.filter(action="group.members_removed", after={"users": [user.username]}).exists()


@pytest.mark.django_db
def test_api_token_lifecycle(client, role_user, capsys):
    role_user("compliance", username="carla")
    call_command("create_api_token", "--user", "carla", "--days", "7")
    token = capsys.readouterr().out.strip()
    stored = AuthToken.objects.get(user__username="carla")
    assert token not in stored.digest and len(stored.digest) >= 64  # only a hash is stored

    me = client.get("/api/v1/me/", headers={"Authorization": f"Token {token}"})
    assert me.status_code == 200
    assert me.json() == {"username": "carla", "email": "carla@example.com", "roles": ["compliance"]}
    assert client.get("/api/v1/me/", headers={"Authorization": "Token nope"}).status_code == 401
    assert client.get("/api/v1/me/").status_code == 401

    AuthToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/me/", headers={"Authorization": f"Token {token}"}).status_code == 401

    call_command("create_api_token", "--user", "carla")
    second = capsys.readouterr().out.strip()
    call_command("revoke_api_tokens", "--user", "carla")
    assert client.get("/api/v1/me/", headers={"Authorization": f"Token {second}"}).status_code == 401
    actions = list(AuditEntry.objects.filter(object_type="knox.authtoken").values_list("action", flat=True))
    assert actions.count("api_token.created") == 2
    assert "api_token.revoked" in actions


@pytest.mark.django_db
def test_create_api_token_rejects_unknown_user():
    with pytest.raises(CommandError, match="no user named"):
        call_command("create_api_token", "--user", "ghost")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "audit_status"),
    [("finance_ops", 403), ("manager", 403), ("compliance", 200), ("integration", 403), ("admin", 200)],
)
def test_audit_trail_is_for_compliance_and_admin(client, role_user, role, audit_status):
    client.force_login(role_user(role))
    assert client.get(reverse("audit-list")).status_code == audit_status
    assert client.get("/api/v1/audit-entries/").status_code == audit_status


@pytest.mark.django_db
def test_pages_need_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_revoke_takes_the_prefix_shown_at_creation(client, role_user, capsys):
    role_user("compliance", username="carla")
    call_command("create_api_token", "--user", "carla")
    captured = capsys.readouterr()
    keep = captured.out.strip()
    call_command("create_api_token", "--user", "carla")
    captured = capsys.readouterr()
    revoke = captured.out.strip()
    shown = re.search(r"token (\S+)… for carla", captured.err).group(1)
    assert len(shown) == 8 and revoke.startswith(shown) and f"--key {shown}" in captured.err

    with pytest.raises(CommandError, match="at least the 8 characters"):
        call_command("revoke_api_tokens", "--user", "carla", "--key", shown[:5])
    call_command("revoke_api_tokens", "--user", "carla", "--key", shown)
    assert "revoked 1 token(s)" in capsys.readouterr().out
    assert client.get("/api/v1/me/", headers={"Authorization": f"Token {revoke}"}).status_code == 401
    assert client.get("/api/v1/me/", headers={"Authorization": f"Token {keep}"}).status_code == 200
    call_command("revoke_api_tokens", "--user", "carla", "--key", keep)  # the whole token works too
    assert AuthToken.objects.filter(user__username="carla").count() == 0
    with pytest.raises(CommandError, match="no token"):
        call_command("revoke_api_tokens", "--user", "carla", "--key", shown)
