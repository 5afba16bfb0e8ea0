"""Runnable examples: a loaders module for workers, and the stampede demo (`make demo`)."""
