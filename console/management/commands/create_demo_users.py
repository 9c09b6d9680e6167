from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from console.roles import ADMIN, ROLES
from exceptions.models import Queue
from exceptions.services import queue_member_add, queue_update

# Demo only: well-known passwords on a console bound to 127.0.0.1.
DEMO_PASSWORD = "closeloop-demo"  # noqa: S105
DEMO_USERS = {
    "ops": "finance_ops",
    "manager": "manager",
    "compliance": "compliance",
    "integration": "integration",
    "admin": ADMIN,
}
# The finance-operations demo user works these queues (and only these: the others show as read-only).
OPS_QUEUES = ("accounts-receivable", "billing", "tax", "master-data", "triage")


class Command(BaseCommand):
    help = "Demo only: create one user per role with a shared well-known password, and print the logins."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        for username, role in DEMO_USERS.items():
            assert role in ROLES
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = role == ADMIN
            user.save()
            user.groups.add(Group.objects.get(name=role))
        ops = User.objects.get(username="ops")  # fetched again: permissions are cached per user object
        for queue in Queue.objects.filter(slug__in=OPS_QUEUES).exclude(members=ops):
            queue_member_add(queue=queue, user=ops, actor="system:demo")
        # Escalations notify the queue's lead: ops leads the queues it works, the manager the others, so that both
        # see the notifications of escalated cases.
        manager = User.objects.get(username="manager")
        for queue in Queue.objects.filter(lead__isnull=True):
            lead = ops if queue.slug in OPS_QUEUES else manager
            queue_update(
                queue=queue,
                actor="system:demo",
                name=queue.name,
                triage_target=queue.triage_target,
                resolve_target=queue.resolve_target,
                is_default=queue.is_default,
                notify_email=queue.notify_email,
                lead=lead,
            )
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in DEMO_USERS.items():
            self.stdout.write(f"  {username:<12} {role}")
        self.stdout.write(f"  ops works and leads the queues {', '.join(OPS_QUEUES)}; manager leads the others")
