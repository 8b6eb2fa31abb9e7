from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # The rate limiter counts in the database cache; `migrate` alone sets it up.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = []
    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
