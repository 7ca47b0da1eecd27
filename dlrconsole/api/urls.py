"""/api/v1/: messages, the product feed's deliveries and endpoints, the schema and its docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
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
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
