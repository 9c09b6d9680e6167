"""Audit of authentication, group membership and API token changes, which Django and knox only announce by signal."""

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from knox.models import AuthToken

from console.lib.audit import actor_for, audit_record
from console.lib.lockout import client_ip, lockout_seconds

User = get_user_model()


def _client_ip(request: Any) -> str | None:
    return client_ip(request) if request is not None else None


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(actor=actor_for(user), action="auth.login", obj=user, after={"ip": _client_ip(request)})


@receiver(user_logged_out)
def audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(actor=actor_for(user), action="auth.logout", obj=user, after={"ip": _client_ip(request)})


@receiver(user_login_failed)
def audit_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    # Django already masks the password in `credentials`; only the username is kept.
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        actor="anonymous",
        action="auth.login_failed",
        object_type="auth.user",
        object_id=username,
        after={"username": username, "ip": _client_ip(request)},
    )


@receiver(user_locked_out)
def audit_lockout(sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any) -> None:
    # axes announces the lockout again for each refused attempt; one entry per lockout period is the fact worth
    # keeping, and a guesser cannot fill the audit trail. The marker lives in the shared cache like the counts.
    marker = f"lockout-audited:{username}:{ip_address}"
    if not cache.add(marker, 1, timeout=lockout_seconds()):
        return
    credential = username or ""
    audit_record(
        actor="anonymous",
        action="auth.locked_out",
        object_type="auth.token" if credential.startswith(("api-token:", "ingest-token:")) else "auth.user",
        object_id=credential[:100],
        after={"credential": username, "ip": ip_address, "lockout_seconds": lockout_seconds()},
    )


@receiver(m2m_changed, sender=User.groups.through)
def audit_group_membership(
    sender: Any, instance: Any, action: str, pk_set: set | None, reverse: bool, **kw: Any
) -> None:
    if action not in {"post_add", "post_remove", "pre_clear"}:
        return
    if action == "pre_clear":
        # The members are only known before the clear happens.
        pk_set = set((instance.user_set if reverse else instance.groups).values_list("pk", flat=True))
    if not pk_set:
        return
    verb = "added" if action == "post_add" else "removed"
    if reverse:  # group.user_set changed
        names = sorted(User.objects.filter(pk__in=pk_set).values_list("username", flat=True))
        audit_record(actor="system:auth", action=f"group.members_{verb}", obj=instance, after={"users": names})
    else:
        names = sorted(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
        audit_record(actor="system:auth", action=f"user.groups_{verb}", obj=instance, after={"groups": names})


@receiver(m2m_changed, sender=Group.permissions.through)
def audit_group_permissions(
    sender: Any, instance: Any, action: str, pk_set: set | None, reverse: bool, **kw: Any
) -> None:
    if action not in {"post_add", "post_remove"} or not pk_set or reverse:
        return
    from django.contrib.auth.models import Permission

    codenames = sorted(Permission.objects.filter(pk__in=pk_set).values_list("codename", flat=True))
    verb = "added" if action == "post_add" else "removed"
    audit_record(
        actor="system:auth", action=f"group.permissions_{verb}", obj=instance, after={"permissions": codenames}
    )


@receiver(post_save, sender=AuthToken)
def audit_api_token_created(sender: Any, instance: AuthToken, created: bool, **kwargs: Any) -> None:
    if created:
        audit_record(
            actor=actor_for(instance.user),
            action="api_token.created",
            object_type="knox.authtoken",
            object_id=instance.token_key,
            object_repr=f"API token {instance.token_key} of {instance.user.get_username()}",
            after={"user": instance.user.get_username(), "expiry": instance.expiry},
        )


@receiver(post_delete, sender=AuthToken)
def audit_api_token_revoked(sender: Any, instance: AuthToken, **kwargs: Any) -> None:
    audit_record(
        actor="system:auth",
        action="api_token.revoked",
        object_type="knox.authtoken",
        object_id=instance.token_key,
        object_repr=f"API token {instance.token_key} of {instance.user.get_username()}",
        before={"user": instance.user.get_username(), "expiry": instance.expiry},
    )
