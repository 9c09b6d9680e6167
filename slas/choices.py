from django.db import models


class ClockStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    AT_RISK = "at_risk", "At risk"
    MET = "met", "Met"
    BREACHED = "breached", "Breached"


# Clocks the periodic evaluation still has to look at; met and breached clocks are final.
LIVE_CLOCK_STATUSES = (ClockStatus.RUNNING, ClockStatus.PAUSED, ClockStatus.AT_RISK)


class VolumeMode(models.TextChoices):
    WINDOW = "window", "Count per sliding window"
    DAILY_DEADLINE = "daily_deadline", "Expected by a time on each working day"


class EvidenceDirection(models.TextChoices):
    BEFORE = "before", "Evidence must come before the trigger (e.g. approval before posting)"
    AFTER = "after", "Evidence must follow the trigger within the window"


# Weekday keys of BusinessCalendar.working_hours, in date.weekday() order (0 = Monday).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DEFAULT_BREACH_CATEGORY = "control"


class EvidenceCheckStatus(models.TextChoices):
    PENDING = "pending", "Waiting for evidence"
    SATISFIED = "satisfied", "Evidence in time"
    MISSING = "missing", "Evidence missing"
    LATE = "late", "Evidence came after the case"


# What stalled transactions, silent feeds and missing evidence become when the monitor names no category.
STALL_CATEGORY = "platform"
VOLUME_CATEGORY = "platform"
