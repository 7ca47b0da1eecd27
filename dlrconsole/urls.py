from django.contrib import admin
from django.urls import include, path

from dlrconsole import views
from dlrconsole.audit.views import audit_log
from dlrconsole.ops.health import healthz, readyz
from dlrconsole.ops.views import metrics
from receipts.views import WebhookView, WebhookWithTokenView

urlpatterns = [
    # The hot path first: every receipt is resolved here before anything else is tried.
    path("hooks/<slug:slug>/", WebhookView.as_view(), name="webhook"),
    # For providers that cannot sign: the connection's secret token in the path.
    path("hooks/<slug:slug>/<str:token>/", WebhookWithTokenView.as_view(), name="webhook-with-token"),
    path("", views.home, name="home"),
    # Liveness (this process answers) and readiness (database, Redis, a worker, beat): public.
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    # Prometheus; refused unless DLR_METRICS_TOKEN or DLR_METRICS_ALLOW names the scraper.
    path("metrics", metrics, name="metrics"),
    path("", include("dlrconsole.accounts.urls")),
    path("console/audit/", audit_log, name="audit-log"),
    path("console/", include("dlrconsole.console.urls")),
    path("api/v1/", include("dlrconsole.api.urls")),
    path("admin/", admin.site.urls),
]
