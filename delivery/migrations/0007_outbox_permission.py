from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0006_rows_waiting_for_a_retry"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="delivery",
            options={
                "permissions": [("view_outbox", "Can read the outbox and readers' links")],
                "verbose_name_plural": "deliveries",
            },
        ),
    ]
