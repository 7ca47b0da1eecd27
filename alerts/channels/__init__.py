"""Where alerts are sent: one module per channel kind, each a subclass of `base.Channel`,
registered by kind in `registry` (as retries/senders/ does for senders)."""
