from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from examples.django_app.catalog.loaders import product as load_product
from examples.metrics_view import exposition


def product(request: HttpRequest, product_id: int) -> JsonResponse:
    """Served from the cache; refreshed ahead by a worker; loaded once on a miss."""
    found = load_product.get(product_id)
    if found is None:
        raise Http404(f"no product {product_id}")
    return JsonResponse(found)


def metrics(request: HttpRequest) -> HttpResponse:
    """refresher's Prometheus metrics (every process's, under PROMETHEUS_MULTIPROC_DIR)."""
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)
