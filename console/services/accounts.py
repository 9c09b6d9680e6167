"""Saved views and REST API tokens (whose audit entries the receivers write)."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from knox.models import AuthToken
from knox.settings import CONSTANTS

from console.lib.errors import DomainError, NotFound
from console.lib.saved_views import SavedView, clean_query


@transaction.atomic
def saved_view_save(*, user: object, page: str, name: str, query: str) -> SavedView:
    """Save (or overwrite, by name) the filter `query` of `page` for `user`."""
    view, _ = SavedView.objects.update_or_create(
        user=user, page=page, name=name.strip()[:80], defaults={"query": clean_query(query)}
    )
    return view


def saved_view_delete(*, user: object, view_id: int) -> None:
    SavedView.objects.filter(user=user, pk=view_id).delete()


# How much of an API token create_api_token shows, and the least revoke_api_tokens --key accepts.
API_TOKEN_SHOWN_CHARS = 8


def api_token_create(*, username: str, days: int) -> tuple[AuthToken, str]:
    """A new REST API token for the user, valid `days` days; the plain token is returned once and never stored."""
    if days < 1:
        raise DomainError("--days must be at least 1")
    try:
        user = get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist as exc:
        raise NotFound(f"no user named {username!r}") from exc
    return AuthToken.objects.create(user=user, expiry=timedelta(days=days))


def api_tokens_revoke(*, username: str, key_prefix: str | None = None) -> int:
    """Revoke the user's API tokens (or the one whose key starts with `key_prefix`); how many were revoked.

    The prefix is what create_api_token shows (API_TOKEN_SHOWN_CHARS characters), or more of the token, or all of it.
    """
    if not get_user_model().objects.filter(username=username).exists():
        raise NotFound(f"no user named {username!r}")
    tokens = AuthToken.objects.filter(user__username=username)
    if key_prefix:
        if len(key_prefix) < API_TOKEN_SHOWN_CHARS:
            raise DomainError(f"--key needs at least the {API_TOKEN_SHOWN_CHARS} characters shown at creation")
        # knox stores the token's first characters as token_key; a longer prefix (the whole token) is cut to it.
        tokens = tokens.filter(token_key__startswith=key_prefix[: CONSTANTS.TOKEN_KEY_LENGTH])
        if len(tokens) > 1:
            raise DomainError(f"--key {key_prefix} matches {len(tokens)} tokens; give more characters")
        if not tokens:
            raise NotFound(f"no token of {username!r} starts with {key_prefix!r}")
    # Deleting one by one sends post_delete per token, which writes each revocation to the audit trail.
    revoked = 0
    for token in tokens:
        token.delete()
        revoked += 1
    return revoked
