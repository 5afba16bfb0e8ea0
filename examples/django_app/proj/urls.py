from __future__ import annotations

from django.urls import path

from examples.django_app.catalog import views

urlpatterns = [path("products/<int:product_id>", views.product), path("metrics", views.metrics)]
