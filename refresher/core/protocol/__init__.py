"""What crosses a process boundary, in one place: a newcomer reads this package to know
every byte refresher writes to Redis, sends through it, or reports.

- scripts.py: every Lua script, with its KEYS, ARGV and reply;
- layout.py: the keys of a cached value and of its epochs, and the envelope a value is
  stored in (the bytes other processes, other fleets and the scripts read);
- signals.py: the messages on a key's signal channel that wake the processes waiting
  for its lock holder;
- outcomes.py: what a refresh did, the task's result that Flower, logs and metrics show.
"""
