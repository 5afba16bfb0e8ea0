"""What both drivers share: the ops that need no Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from refresher.core.ops import Command, Publish, Script
from refresher.singleflight import Group

if TYPE_CHECKING:
    from refresher.drivers.sync import SyncDriver
    from refresher.publish import Publisher


class Driver:
    def __init__(self, flights: Group[Any], publisher: Publisher, socket_timeout: float) -> None:
        self.flights = flights
        self.publisher = publisher
        self.socket_timeout = socket_timeout

    def publish(self, op: Publish, undo_with: SyncDriver) -> bool:
        """Hand the task over; a failed publish is undone from the publisher's thread."""
        return self.publisher.submit(
            op.loader, op.args, op.kwargs, op.seen, op.expires_s, on_failure=lambda: undo_with.run(op.undo()),
            key=op.key, version=op.version,
        )


def lost_scripts(ops: tuple[Command | Script, ...], replies: list[Any]) -> dict[int, Script]:
    """The pipeline's scripts the server did not have (NOSCRIPT: they ran nothing), by position."""
    return {i: op for i, (op, reply) in enumerate(zip(ops, replies))
            if isinstance(op, Script) and isinstance(reply, NoScriptError)}
