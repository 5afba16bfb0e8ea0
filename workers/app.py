"""The Celery app. `celery -A workers worker` finds it as `workers.app`.

It imports the modules listed in REFRESHER_LOADERS (comma-separated) so that their
loaders are registered; only those loaders can be refreshed.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from refresher import flower
from refresher.client import DEFAULT_REDIS_URL
from refresher.logs import json_asked, use_json
from refresher.loop_waker import WakingConsumer
from refresher import wire
from refresher.publish import celery_settings
from refresher.refresh import rejected

log = logging.getLogger("refresher")
# `celery -A workers flower`, from any directory, reads refresher/flowerconfig.py (Flower
# takes FLOWER_CONF as --conf): it refuses to start without credentials.
os.environ.setdefault("FLOWER_CONF", flower.CONFIG_FILE)


def _broker_url() -> str:
    return (
        os.environ.get("REFRESHER_BROKER_URL")
        or os.environ.get("REFRESHER_REDIS_URL")
        or DEFAULT_REDIS_URL
    )


def import_loaders(spec: str | None = None) -> list[str]:
    """Import each module named in REFRESHER_LOADERS; return their names."""
    spec = os.environ.get("REFRESHER_LOADERS", "") if spec is None else spec
    modules = [m.strip() for m in spec.split(",") if m.strip()]
    for module in modules:
        importlib.import_module(module)
    return modules


class Consumer(WakingConsumer):
    """Celery's consumer (woken by pool threads: refresher/loop_waker.py), made to survive
    broker restarts (see docs/brokers.md).

    1. A lost connection's clean-up must not kill the worker. Celery 5.7 first collects
       the broken connection (which clears its transport's `client`), then closes it. On
       the Redis transport, if the connection died during a BRPOP, the collect's channel
       close stops early, so the close closes the channel again; holding messages received
       but not yet acknowledged, it restores them through a new Redis client built from
       that `client`: `AttributeError: 'NoneType' object has no attribute 'hostname'`,
       which is not a connection error, so it escaped and the worker exited
       ("Unrecoverable error"). The restore could not have reached a dead broker anyway,
       and a refresh task that is not restored costs nothing: its pending marker lapses
       and the next read asks again. So an error from that clean-up is logged, and the
       worker reconnects as it does after any connection loss.
    2. No gossip and no mingle, however the worker is started: refresher needs neither
       (no elections, no revoked-task sync at start-up). Closing Gossip's broadcast channel
       on a reconnect dereferences the closed connection too (kombu issue 582; "Error on
       restarting Gossip" in the worker's log, not fatal), and with both on, older Celery
       releases left workers that reconnected but never consumed (celery issues 8030,
       8091). Turning them off alone did not stop the crash in (1). The worker heartbeat
       stays: Flower needs it.
    """

    def __init__(self, *args: Any, worker_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        options = {**(worker_options or {}), "without_gossip": True, "without_mingle": True}
        super().__init__(*args, worker_options=options, **kwargs)

    def create_task_handler(self, *args: Any) -> Any:
        """3. A task message over wire.MAX_MESSAGE_BYTES is rejected before it is decoded:
        anyone who can publish could otherwise make the worker build hundreds of MB of
        objects from one message before refresher.wire sees its arguments."""
        handle = super().create_task_handler(*args)

        def on_task_received(message: Any) -> None:
            try:
                wire.check_size(message.body)
            except wire.Rejected as exc:
                rejected(exc, None)
                message.reject_log_error(log, self.connection_errors)
                return
            handle(message)

        return on_task_received

    def on_connection_error_after_connected(self, exc: BaseException) -> None:
        try:
            super().on_connection_error_after_connected(exc)
        except Exception as cleanup:  # the connection is gone already; reconnect regardless
            log.warning("refresher: closing the lost broker connection failed (%r); reconnecting anyway", cleanup)


def json_logs(logger: logging.Logger, **_: Any) -> None:
    """REFRESHER_LOG_FORMAT=json: the worker's log lines, Celery's too, as JSON objects."""
    if json_asked():
        use_json(logger)


after_setup_logger.connect(json_logs)
after_setup_task_logger.connect(json_logs)


app = Celery("refresher", set_as_current=True)
app.conf.update(
    celery_settings(_broker_url(), os.environ.get("REFRESHER_QUEUE") or "refresher", timeout=5.0),
    # Off by default: events cost a worker about a fifth of its refresh throughput.
    # Start workers with `-E` when Flower watches them.
    task_acks_late=False,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    # A worker keeps trying to reach a lost broker (every 2, 4, ... up to 30 s) instead of
    # exiting after 100 attempts (about 45 minutes): it holds no state a restart would save.
    broker_connection_max_retries=None,
    # Cancels running acks_late tasks on a connection loss: refresher has none, and this
    # silences the deprecation warning Celery otherwise prints at every reconnect.
    worker_cancel_long_running_tasks_on_connection_loss=True,
    worker_consumer="workers.app:Consumer",
)
import_loaders()
