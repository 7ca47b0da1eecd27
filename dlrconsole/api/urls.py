"""/api/v1/: messages, the product feed's deliveries and endpoints, the schema and its docs."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from dlrconsole.api.feed import FeedDeliveryViewSet, ProductEndpointViewSet
from dlrconsole.api.messages import MessageViewSet

router = DefaultRouter()
router.register("messages", MessageViewSet, basename="message")

feed = DefaultRouter()
feed.register("deliveries", FeedDeliveryViewSet, basename="feed-delivery")
feed.register("endpoints", ProductEndpointViewSet, basename="feed-endpoint")

urlpatterns = [
    path("feed/", include(feed.urls)),
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start-up script served from its own URL, so the page needs no inline script;
    # both viewers set styles from their scripts, which the console's pages never do.
    path(
        "docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="api-docs",
    ),
    path(
        "redoc/",
        csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]})(
            SpectacularRedocView.as_view(url_name="schema")
        ),
        name="api-redoc",
    ),
]
