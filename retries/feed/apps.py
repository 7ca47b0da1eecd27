from django.apps import AppConfig


class FeedConfig(AppConfig):
    """The product feed: what the product is told about its messages, signed with Standard
    Webhooks headers and delivered on the spec's retry schedule. It knows messages (receipts)
    and nothing of the rules that decide what to tell (retries, above it)."""

    name = "retries.feed"
    label = "feed"
    verbose_name = "Product feed"
