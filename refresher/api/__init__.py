"""The public side: Refresher, its loaders, and the registry a worker finds them in."""
