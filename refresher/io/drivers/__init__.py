"""Thin drivers that perform the core's ops and decide nothing. aio.py and asubscriber.py
are written once, for asyncio; scripts/unasync.py generates sync.py and subscriber.py from
them (`make test` fails while those are stale). What the two flavours do differently is
hand-written beside them: tasks.py / threads.py, task_links.py / thread_links.py."""
