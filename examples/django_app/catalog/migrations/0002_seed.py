"""A few products to read, so the example works right after `manage migrate`."""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def add_products(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    product = apps.get_model("catalog", "Product")
    product.objects.bulk_create(product(id=n, name=f"product {n}", price_cents=100 * n) for n in range(1, 21))


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(add_products, migrations.RunPython.noop)]
