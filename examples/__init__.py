"""Runnable examples: a loaders module for workers, the stampede demo (`make demo`), and
small FastAPI, Flask and Django apps (README, "Framework examples")."""
