"""The decisions, with no I/O: what to read, when to ask for a refresh, how to load,
wait and commit. Steps are generators that yield ops (core/ops.py) for a driver to
perform, the way h11 keeps HTTP apart from sockets; the sync and asyncio drivers
(refresher/drivers) run the same steps."""
