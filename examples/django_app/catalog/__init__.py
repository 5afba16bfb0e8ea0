"""A product catalog whose product reads go through refresher (see loaders.py)."""
