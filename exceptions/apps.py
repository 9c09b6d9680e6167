from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions"
    verbose_name = "Exceptions and cases"

    def ready(self) -> None:
        from exceptions import receivers  # noqa: F401 - connects the signal receivers
