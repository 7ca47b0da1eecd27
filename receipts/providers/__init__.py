"""Provider adapters: one module per provider kind, each verifying and parsing that provider's
receipts into normalized events, registered by kind in `registry`."""
