#!/usr/bin/env python
"""Django's command-line utility for Closeloop."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    # manage.py is the developer's entry point: without a SECRET_KEY it runs in development mode. Production sets
    # SECRET_KEY (and DEBUG=0); gunicorn (console.wsgi) and Celery (console.celery) never take this default.
    if not os.environ.get("SECRET_KEY"):
        os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
