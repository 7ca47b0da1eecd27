"""Senders: provider send APIs and fallback channels. Every error says temporary or permanent."""
