from django.db import migrations, models

from subscriptions.hashing import address_hash, key_id

BATCH = 2000


def fill_hashes(apps, schema_editor):
    """Every subscriber's and every suppression entry's keyed address hash."""
    Subscriber = apps.get_model("subscriptions", "Subscriber")
    Suppression = apps.get_model("subscriptions", "Suppression")
    last = 0
    while True:
        batch = list(
            Subscriber.objects.exclude(email=None)
            .filter(pk__gt=last)
            .order_by("pk")
            .only("pk", "email")[:BATCH]
        )
        if not batch:
            break
        last = batch[-1].pk
        for subscriber in batch:
            subscriber.email_hash = address_hash(subscriber.email)
        Subscriber.objects.bulk_update(batch, ["email_hash"])
    current = key_id()
    for entry in Suppression.objects.only("pk", "email"):
        Suppression.objects.filter(pk=entry.pk).update(
            email_hash=address_hash(entry.email), key_id=current
        )


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0004_mailbox_cooldown_and_confirm_nonce"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="subscriber",
            options={
                "ordering": ["email"],
                "permissions": [("erase_subscriber", "Can erase a reader's data (GDPR Art. 17)")],
            },
        ),
        migrations.AddField(
            model_name="subscriber",
            name="email_hash",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="suppression",
            name="email_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="suppression",
            name="key_id",
            field=models.CharField(default="", editable=False, max_length=16),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="suppression",
            name="email",
            field=models.EmailField(blank=True, max_length=254),
        ),
        migrations.AlterField(
            model_name="suppression",
            name="reason",
            field=models.CharField(
                choices=[
                    ("bounced", "Hard bounce"),
                    ("complained", "Spam complaint"),
                    ("invalid", "Invalid address"),
                    ("blocked", "Blocked by the receiver"),
                    ("unsubscribed", "Unsubscribed at the ESP"),
                    ("manual", "Added by staff"),
                    ("erased", "Reader erased at their request"),
                ],
                max_length=20,
            ),
        ),
        migrations.RunPython(fill_hashes, migrations.RunPython.noop, elidable=True),
        migrations.RemoveConstraint(
            model_name="suppression",
            name="suppression_unique_active_email",
        ),
        migrations.RemoveIndex(
            model_name="suppression",
            name="subscriptio_email_0236d2_idx",
        ),
        migrations.AddIndex(
            model_name="suppression",
            index=models.Index(fields=["email_hash"], name="subscriptio_email_h_d79717_idx"),
        ),
        migrations.AddIndex(
            model_name="subscriber",
            index=models.Index(
                condition=models.Q(("join_email__isnull", False)),
                fields=["join_email"],
                name="subscriber_join_email",
            ),
        ),
        migrations.AddConstraint(
            model_name="suppression",
            constraint=models.UniqueConstraint(
                models.F("email_hash"),
                condition=models.Q(("lifted_at__isnull", True)),
                name="suppression_unique_active_hash",
            ),
        ),
    ]
