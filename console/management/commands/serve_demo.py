import logging
import threading
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from console.periodic import run_due_jobs

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Demo only: serve the console on 127.0.0.1 and run the periodic jobs in-process (there is no beat)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--tick", type=float, default=30.0, help="seconds between checks for due jobs")

    def handle(self, *args: object, **options: object) -> None:
        stop = threading.Event()

        def loop() -> None:
            last_runs: dict[str, float] = {}
            while not stop.is_set():
                run_due_jobs(last_runs)
                stop.wait(options["tick"])

        threading.Thread(target=loop, name="periodic-jobs", daemon=True).start()
        time.sleep(0.1)
        call_command("runserver", options["addr"], use_reloader=False)
        stop.set()
