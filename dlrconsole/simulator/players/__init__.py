"""Simulated providers: one module per provider kind, each playing that provider's receipts
(signed as the provider signs them), registered by the adapter's kind in `registry`."""
