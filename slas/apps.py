from django.apps import AppConfig


class SlasConfig(AppConfig):
    name = "slas"
    verbose_name = "Business SLAs"

    def ready(self) -> None:
        from slas import receivers  # noqa: F401  (connects the signal receivers)
