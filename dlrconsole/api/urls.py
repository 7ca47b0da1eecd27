"""/api/v1/: messages, the product feed's deliveries and endpoints, the schema and its docs."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from dlrconsole.api.feed import FeedDeliveryViewSet, ProductEndpointViewSet
from dlrconsole.api.messages import MessageViewSet


def not_found(request: HttpRequest) -> JsonResponse:
    """An API client reads JSON, also for a path no route serves (an id that is not a number)."""
    return JsonResponse({"detail": "Not found."}, status=404)


router = DefaultRouter()
router.register("messages", MessageViewSet, basename="message")

feed = DefaultRouter()
feed.register("deliveries", FeedDeliveryViewSet, basename="feed-delivery")
feed.register("endpoints", ProductEndpointViewSet, basename="feed-endpoint")

urlpatterns = [
    path("feed/", include(feed.urls)),
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    # Only paths ending in a slash: one without is still redirected to its slashed form.
    re_path(r"^.*/$", not_found),
]
