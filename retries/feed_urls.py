"""/api/v1/feed/: deliveries/ and endpoints/."""

from rest_framework.routers import DefaultRouter

from retries.feed_api import FeedDeliveryViewSet, ProductEndpointViewSet

router = DefaultRouter()
router.register("deliveries", FeedDeliveryViewSet, basename="feed-delivery")
router.register("endpoints", ProductEndpointViewSet, basename="feed-endpoint")

urlpatterns = router.urls
