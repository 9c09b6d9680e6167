"""Replay targets and webhooks become configurable: secrets sealed (or env: references) and renamed for what they
are, a replay's Idempotency-Key derived from its occurrence and payload, a business key per target, retries and a
delivery log."""

import uuid

import django.db.models.deletion
from django.db import migrations, models


def seal_secrets(apps, schema_editor):
    # Secrets stored in plain text before this migration are sealed in place; an env:NAME reference stays as it is.
    from exceptions.outbound import ENV_PREFIX, SEALED_PREFIX, secret_seal

    for model_name, field in (("ReplayTarget", "auth_secret"), ("OutboundWebhook", "signing_secret")):
        model = apps.get_model("exceptions", model_name)
        for row in model.objects.exclude(**{field: ""}):
            value = getattr(row, field)
            if not value.startswith((SEALED_PREFIX, ENV_PREFIX)):
                model.objects.filter(pk=row.pk).update(**{field: secret_seal(value)})


def keys_of_earlier_replays(apps, schema_editor):
    # Earlier replays were sent with their own id as Idempotency-Key: that is what their targets saw.
    Replay = apps.get_model("exceptions", "Replay")
    ReplayTarget = apps.get_model("exceptions", "ReplayTarget")
    targets = dict(ReplayTarget.objects.values_list("system", "pk"))
    for replay in Replay.objects.filter(idempotency_key="").select_related("occurrence"):
        Replay.objects.filter(pk=replay.pk).update(
            idempotency_key=str(replay.pk), target_id=targets.get(replay.occurrence.system)
        )


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0004_case_activity_proposed_and_reclassified")]

    operations = [
        migrations.RenameField(model_name="replaytarget", old_name="auth_header", new_name="auth_secret"),
        migrations.RenameField(model_name="outboundwebhook", old_name="secret", new_name="signing_secret"),
        migrations.CreateModel(
            name="WebhookDelivery",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("event", models.CharField(max_length=30)),
                ("body", models.JSONField(help_text="sent unchanged on every attempt")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("sending", "Sending"),
                            ("delivered", "Delivered"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("response_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("duration_ms", models.PositiveIntegerField(blank=True, help_text="of the last attempt", null=True)),
                ("error", models.CharField(blank=True, max_length=300)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("delivered_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-created_at"],
            },
        ),
        migrations.AlterModelOptions(
            name="outboundwebhook",
            options={"ordering": ["name", "id"]},
        ),
        migrations.AlterModelOptions(
            name="replaytarget",
            options={"ordering": ["system"]},
        ),
        migrations.AddField(
            model_name="outboundwebhook",
            name="max_attempts",
            field=models.PositiveSmallIntegerField(default=5, help_text="sends before a delivery fails, with backoff"),
        ),
        migrations.AddField(
            model_name="outboundwebhook",
            name="version",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="replay",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="replay",
            name="business_key",
            field=models.CharField(
                blank=True, help_text="the business object, from the target's paths", max_length=300
            ),
        ),
        migrations.AddField(
            model_name="replay",
            name="business_key_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="replay",
            name="duration_ms",
            field=models.PositiveIntegerField(blank=True, help_text="of the last attempt", null=True),
        ),
        migrations.AddField(
            model_name="replay",
            name="idempotency_key",
            field=models.CharField(
                default="", help_text="SHA-256 of the occurrence and the payload sent", max_length=64
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="replay",
            name="not_before",
            field=models.DateTimeField(blank=True, help_text="a retry waits until then", null=True),
        ),
        migrations.AddField(
            model_name="replay",
            name="reason",
            field=models.TextField(blank=True, help_text="why it was sent although an earlier replay got through"),
        ),
        migrations.AddField(
            model_name="replay",
            name="target",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="replays",
                to="exceptions.replaytarget",
            ),
        ),
        migrations.AddField(
            model_name="replaytarget",
            name="business_key_paths",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text='JSON paths naming the business object, e.g. ["$.business_keys.invoice"]',
            ),
        ),
        migrations.AddField(
            model_name="replaytarget",
            name="max_attempts",
            field=models.PositiveSmallIntegerField(default=5, help_text="sends before a replay fails, with backoff"),
        ),
        migrations.AddField(
            model_name="replaytarget",
            name="method",
            field=models.CharField(
                choices=[("POST", "POST"), ("PUT", "PUT"), ("PATCH", "PATCH")], default="POST", max_length=6
            ),
        ),
        migrations.AddField(
            model_name="replaytarget",
            name="signing_secret",
            field=models.CharField(
                blank=True, help_text="signs each request (Closeloop-Signature); sealed or env:NAME", max_length=1000
            ),
        ),
        migrations.AddField(
            model_name="replaytarget",
            name="version",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AlterField(
            model_name="outboundwebhook",
            name="signing_secret",
            field=models.CharField(
                blank=True, help_text="signs each request (Closeloop-Signature); sealed or env:NAME", max_length=1000
            ),
        ),
        migrations.AlterField(
            model_name="replaytarget",
            name="auth_secret",
            field=models.CharField(
                blank=True,
                help_text="sent as Authorization; sealed (fernet:...) or a reference env:NAME",
                max_length=1000,
            ),
        ),
        migrations.AddIndex(
            model_name="replay",
            index=models.Index(fields=["target", "business_key_hash"], name="replay_business_key_idx"),
        ),
        migrations.AddIndex(
            model_name="replay",
            index=models.Index(fields=["target", "-created_at"], name="replay_target_log_idx"),
        ),
        migrations.AddConstraint(
            model_name="replay",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("status__in", ("pending", "sending", "sent")), models.Q(("business_key_hash", ""), _negated=True)
                ),
                fields=("target", "business_key_hash"),
                name="replay_one_in_flight_per_business_key",
            ),
        ),
        migrations.AddConstraint(
            model_name="replaytarget",
            constraint=models.CheckConstraint(
                condition=models.Q(("method__in", ["POST", "PUT", "PATCH"])), name="target_method_valid"
            ),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="case",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="exceptions.case",
            ),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="webhook",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="deliveries", to="exceptions.outboundwebhook"
            ),
        ),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(fields=["webhook", "-created_at"], name="delivery_webhook_log_idx"),
        ),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "sending"])),
                fields=["status", "next_attempt_at"],
                name="delivery_open_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="webhookdelivery",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["pending", "sending", "delivered", "failed"])),
                name="delivery_status_valid",
            ),
        ),
        migrations.RunPython(seal_secrets, migrations.RunPython.noop),
        migrations.RunPython(keys_of_earlier_replays, migrations.RunPython.noop),
    ]
