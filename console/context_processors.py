from typing import Any

from django.http import HttpRequest

from console.lib.navigation import navigation_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    return {"navigation": navigation_for(getattr(request, "user", None))}
