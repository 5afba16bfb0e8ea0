"""Integrations with frameworks refresher does not depend on (each imports its own)."""
