"""The exceptions a caller may need to tell apart."""

from __future__ import annotations


class RefresherError(Exception):
    """Base class for the errors this library raises itself."""


class CacheUnavailable(RefresherError):
    """The cache Redis could not be reached in time (connection refused, timeout).

    Raised instead of redis-py's own errors so callers need one `except`; with
    `fail_open=True` the loader is called directly instead.
    """


class LoadFailed(RefresherError):
    """Another process was loading this key for us and its loader raised.

    In the process that ran the loader, callers get the loader's own exception; callers
    coalesced onto it from other processes get this, naming the original error.
    """

    def __init__(self, loader: str, error_type: str, message: str) -> None:
        super().__init__(f"loader {loader!r} failed in another process: {error_type}: {message}")
        self.loader = loader
        self.error_type = error_type
        self.message = message


class UnknownLoader(RefresherError, LookupError):
    """A refresh task named a loader this worker has not registered."""
