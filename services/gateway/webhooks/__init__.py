"""Webhooks: a hospital system hears that a case opened, signed and retried."""
