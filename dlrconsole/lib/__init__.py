"""Neutral infrastructure that every layer may import and none owns: configuration history,
Standard Webhooks signing, per-process caches. Nothing here imports the project's apps
(the import contracts in pyproject.toml check it), so receipts and its providers can use it
without depending on the console above them."""
