from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from dlrconsole import views
from dlrconsole.audit.views import audit_log
from receipts.api import MessageViewSet
from receipts.views import webhook

router = DefaultRouter()
router.register("messages", MessageViewSet, basename="message")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("dlrconsole.accounts.urls")),
    path("console/audit/", audit_log, name="audit-log"),
    path("console/", include("receipts.console.urls")),
    path("hooks/<slug:slug>/", webhook, name="webhook"),
    # For providers that cannot sign: the connection's secret token in the path.
    path("hooks/<slug:slug>/<str:token>/", webhook, name="webhook-with-token"),
    path("api/v1/feed/", include("retries.feed_urls")),
    path("api/v1/", include(router.urls)),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
]
