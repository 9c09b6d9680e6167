"""Content-Security-Policy: pages run only the console's own static files, and nothing inline that it would refuse."""

import re

import pytest
from django.urls import reverse

from console.lib.navigation import navigation_for


def _pages(user) -> list[str]:
    extra = ["/api/v1/docs/", "/admin/", "/admin/auth/user/", "/admin/auth/user/add/"]
    return [item.url for _, items in navigation_for(user) for item in items] + extra


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.django_db
def test_policy_allows_only_own_files(client):
    policy = _policy(client.get(reverse("login")))
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_no_page_has_inline_script_style_or_handlers(client, role_user):
    """What the policy would refuse in a browser: a script without src, a style element or attribute, on* handlers."""
    admin = role_user("admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    checked = 0
    for url in [reverse("login"), *_pages(admin)]:
        response = client.get(url)
        client.force_login(admin)
        assert response.status_code == 200, url
        assert "Content-Security-Policy" in response, url
        html = response.content.decode()
        # JSON data blocks (type="application/json") are not run, so the policy allows them.
        scripts = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
        assert not scripts, (url, scripts)
        assert not re.search(r"<style[\s>]", html), url
        assert not re.search(r"""\sstyle=["']""", html), url
        assert not re.search(r"""\son[a-z]+=["']""", html), url
        checked += 1
    assert checked >= 15
