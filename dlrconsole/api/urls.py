"""/api/v1/: messages, the product feed's deliveries and endpoints, the schema and its docs.

The schema and its docs need a sign-in (a session, or an API key for the schema) unless
DLR_PUBLISH_API_SCHEMA publishes them: they list every endpoint, filter and field.
"""

from collections.abc import Callable
from typing import Any

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView

from dlrconsole.api.feed import FeedDeliveryViewSet, ProductEndpointViewSet
from dlrconsole.api.messages import MessageViewSet
from dlrconsole.api.permissions import SignedInUnlessPublished
from dlrconsole.api.rollups import RollupView


def signed_in_unless_published(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A docs page: people who are not signed in are sent to sign in, as for any page."""
    gated = login_required(view)

    def docs_page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return (view if settings.DLR_PUBLISH_API_SCHEMA else gated)(request, *args, **kwargs)

    return docs_page


class NotFoundView(APIView):
    """A path no route serves (an id that is not a number) answers as the API does: in JSON,
    401 without a token, else 404."""

    schema = None  # not an operation

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFound()


router = DefaultRouter()
router.register("messages", MessageViewSet, basename="message")

feed = DefaultRouter()
feed.register("deliveries", FeedDeliveryViewSet, basename="feed-delivery")
feed.register("endpoints", ProductEndpointViewSet, basename="feed-endpoint")

urlpatterns = [
    path("feed/", include(feed.urls)),
    path("", include(router.urls)),
    path("rollups/", RollupView.as_view(), name="rollup-list"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[SignedInUnlessPublished]), name="schema"),
    # Swagger UI's start-up script served from its own URL, so the page needs no inline script;
    # both viewers set styles from their scripts, which the console's pages never do.
    path(
        "docs/",
        signed_in_unless_published(
            csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="schema"))
        ),
        name="api-docs",
    ),
    path(
        "redoc/",
        signed_in_unless_published(
            csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]})(
                SpectacularRedocView.as_view(url_name="schema")
            )
        ),
        name="api-redoc",
    ),
    # Only paths ending in a slash: one without is still redirected to its slashed form.
    re_path(r"^.*/$", NotFoundView.as_view(), name="api-not-found"),
]
