"""API tokens were stored in clear (rest_framework.authtoken): each becomes an API key of its
user, hashed, and the clear table goes, with every trace of it (its content type, permissions
and admin log entries, whose descriptions held the keys; its migration records, so that
reinstalling the app would start afresh).

A token is 40 hex digits without a prefix: it is filed under the first of its 8-character
slices that no key uses yet, and found by its slices (accounts/keys.py). Clients keep sending
it as before. Not reversible: the clear values are gone.
"""

from datetime import UTC

from django.db import migrations
from django.utils import timezone
from rest_framework_api_key.crypto import KeyGenerator

TABLE = "authtoken_token"
NAME = "API token (from before keys were hashed)"


def hash_clear_tokens(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if TABLE not in connection.introspection.table_names(cursor):
            return  # a database created after the change
        cursor.execute(f"SELECT key, user_id, created FROM {TABLE}")  # noqa: S608 - a constant
        tokens = cursor.fetchall()
    UserAPIKey = apps.get_model("accounts", "UserAPIKey")
    generator = KeyGenerator()
    taken = set(UserAPIKey.objects.values_list("prefix", flat=True))
    for key, user_id, created in tokens:
        prefix = next(key[i : i + 8] for i in range(0, 40, 8) if key[i : i + 8] not in taken)
        taken.add(prefix)
        api_key = UserAPIKey.objects.create(prefix=prefix, hashed_key=generator.hash(key), user_id=user_id, name=NAME)
        if timezone.is_naive(created):  # SQLite's raw cursor: stored in UTC
            created = timezone.make_aware(created, UTC)
        UserAPIKey.objects.filter(pk=api_key.pk).update(created=created)  # not the migration's time
    ContentType = apps.get_model("contenttypes", "ContentType")
    clear_types = list(ContentType.objects.filter(app_label="authtoken").values_list("pk", flat=True))
    apps.get_model("admin", "LogEntry").objects.filter(content_type__in=clear_types).delete()
    apps.get_model("auth", "Permission").objects.filter(content_type__in=clear_types).delete()
    ContentType.objects.filter(pk__in=clear_types).delete()
    schema_editor.execute(f"DROP TABLE {TABLE}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_api_keys"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(hash_clear_tokens, migrations.RunPython.noop)]
