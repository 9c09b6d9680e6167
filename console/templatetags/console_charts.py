"""Template tags for pages with figures."""

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString

from console.lib.charts import figure_template

register = template.Library()


@register.simple_tag
def figure_template_script() -> SafeString:
    """The shared figure template as a JSON data block (not a script the browser runs: the CSP allows it)."""
    return json_script(figure_template(), "cl-figure-template")
