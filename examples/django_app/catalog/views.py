from __future__ import annotations

from django.http import Http404, HttpRequest, JsonResponse

from examples.django_app.catalog.loaders import product as load_product


def product(request: HttpRequest, product_id: int) -> JsonResponse:
    """Served from the cache; refreshed ahead by a worker; loaded once on a miss."""
    found = load_product.get(product_id)
    if found is None:
        raise Http404(f"no product {product_id}")
    return JsonResponse(found)
