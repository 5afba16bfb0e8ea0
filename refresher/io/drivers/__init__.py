"""Thin drivers that perform the core's ops: sync.py with redis-py and threads, aio.py
with redis.asyncio and tasks. They decide nothing."""
