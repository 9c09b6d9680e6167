"""Log lines that show the `extra` fields: `logger.info("ingest.batch_stored", extra={"source": ..., "accepted": n})`.

Production writes JSON lines (python-json-logger, configured in settings); development writes the same fields as
`key=value` after the message, which this module's formatter does. Either way the extra fields are the LogRecord
attributes that the logging module itself does not set.
"""

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

# Every attribute a plain LogRecord carries (this Python's set, `taskName` included where it exists), plus the two
# that Formatter.format adds; anything else on a record came from `extra`.
STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {"message", "asctime"}


def record_extra(record: logging.LogRecord) -> dict[str, Any]:
    """The fields passed as `extra` to the logging call, in the order given."""
    return {key: value for key, value in vars(record).items() if key not in STANDARD_ATTRS and not key.startswith("_")}


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    # Quote what would otherwise be read as two fields or as a field separator; a bare word stays bare.
    if text == "" or any(c.isspace() or c in '="' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    """The usual line, then ` key=value` for each extra field (values with spaces or `=` are quoted)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = " ".join(f"{key}={_text(value)}" for key, value in record_extra(record).items())
        return f"{line} {fields}" if fields else line


@contextlib.contextmanager
def loggers_quiet(names: Iterable[str]) -> Iterator[None]:
    """Raise these loggers to WARNING for the duration (commands whose routine INFO lines would bury their output)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
