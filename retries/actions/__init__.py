"""What a rule can do: one module per action, each a subclass of `base.Action`, registered by
its slug in `registry` (alerts adds its own from its AppConfig)."""
