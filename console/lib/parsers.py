"""Request parsers refusing NUL in text. Their own module: DRF imports the configured parsers while
`rest_framework.views` loads, which console.lib.api imports (one module would import itself half-initialised)."""

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _refuse_nul(data: Any) -> Any:
    # PostgreSQL cannot store or compare text holding NUL: a lookup or save with one was a 500.
    if isinstance(data, str) and "\x00" in data:
        raise ParseError("text must not contain NUL (\\u0000)")
    if isinstance(data, dict):
        for key, value in data.items():
            _refuse_nul(key)
            _refuse_nul(value)
    elif isinstance(data, list | tuple):
        for value in data:
            _refuse_nul(value)
    elif hasattr(data, "lists"):  # QueryDict from forms
        for key, values in data.lists():
            _refuse_nul(key)
            _refuse_nul(list(values))
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        return _refuse_nul(super().parse(stream, media_type, parser_context))


class FormParser(parsers.FormParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        return _refuse_nul(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        result = super().parse(stream, media_type, parser_context)
        _refuse_nul(result.data)
        return result
