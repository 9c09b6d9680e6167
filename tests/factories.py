"""The one place test data is built."""

from datetime import date, timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))


# ---- slas -----------------------------------------------------------------------------------------------------------

OFFICE_HOURS = {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


class BusinessCalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "slas.BusinessCalendar"

    slug = factory.Sequence(lambda n: f"calendar-{n}")
    name = factory.LazyAttribute(lambda c: c.slug.title())
    time_zone = "Europe/Berlin"
    working_hours = factory.LazyFunction(lambda: {k: [list(i) for i in v] for k, v in OFFICE_HOURS.items()})


class HolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "slas.Holiday"

    calendar = factory.SubFactory(BusinessCalendarFactory)
    date = factory.Sequence(lambda n: date(2030, 1, 1) + timedelta(days=n))
    name = "Holiday"


class SlaDefinitionFactory(factory.django.DjangoModelFactory):
    """Contract approved -> invoice posted within 4 business hours (Berlin office hours), at risk from 80%."""

    class Meta:
        model = "slas.SlaDefinition"

    slug = factory.Sequence(lambda n: f"sla-{n}")
    name = factory.LazyAttribute(lambda d: f"SLA {d.slug}")
    start_kind = "contract.approved"
    stop_kind = "invoice.posted"
    target = timedelta(hours=4)
    calendar = factory.SubFactory(BusinessCalendarFactory)
    at_risk_percent = 80
    breach_category_slug = "control"
