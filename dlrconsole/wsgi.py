import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dlrconsole.settings")
pages = get_wsgi_application()  # sets Django up first

from dlrconsole.webhook_lane import WebhookHandler, by_path  # noqa: E402 (needs the apps loaded)

application = by_path(pages=pages, webhooks=WebhookHandler())

# What is loaded by now (Django, the apps, and through the URLconf every view module) lives as
# long as the process: out of the cyclic collector's reach. Otherwise each full collection
# walks those ~130,000 objects again, and a webhook's batch of 1,000 reports allocates enough
# (its JSON, events, rows) to set off such collections: 114 ms a batch in process, 91 with the
# collector off, 100 with these frozen (bench/profile_batch.py). Cycles created later are
# still collected; only these are never looked at again, as Python's docs advise for servers.
get_resolver().url_patterns  # noqa: B018 (loads the URLconf now rather than at the first request)
gc.freeze()
