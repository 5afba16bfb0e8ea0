"""The worker's consumer, made to survive broker restarts (docs/brokers.md)."""

from __future__ import annotations

import logging
from typing import Any

from refresher.core import wire
from refresher.worker.loop_waker import WakingConsumer
from refresher.worker.run import rejected

log = logging.getLogger("refresher")


class Consumer(WakingConsumer):
    """Celery's consumer, made to survive broker restarts (see docs/brokers.md).

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
        objects from one message before refresher.core.wire sees its arguments."""
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
