"""Errors of out-of-process I/O, placed in virthost's hierarchy so the RPC layer maps them.

File system errors are not here: a helper's OSError is raised in the daemon as the same
OSError subclass (FileNotFoundError, ...) with errno and file names, so callers handle them as
they would handle the ``os`` call. What is here is what only a remote call can do: time out,
find the helper dead or saturated, or be refused.
"""

from __future__ import annotations

from virthost.common import errors


class StorageTimeout(errors.AccessTimeout):
    """A call did not complete in time: the storage behind it is presumably hung.

    VDSM code 3, "Image repository access timeout". The helper keeps running; its thread stays
    stuck until the storage answers, and the pool's other threads keep serving.
    """


class OopError(errors.VirtHostError):
    """Base of the failures of the out-of-process machinery itself."""

    message = "Out of process I/O failed"


class HelperDied(OopError):
    """The helper process exited or broke its protocol; calls pending on it get this.

    The next call starts a new helper.
    """

    message = "Out of process I/O helper died"


class HelperFailed(OopError):
    """The helper hit an unexpected error (a bug) running the call."""

    message = "Out of process I/O helper failed"


class PoolClosed(OopError):
    """The pool was closed; it takes no more calls."""

    message = "Out of process I/O pool closed"


class TooManyRequests(errors.ResourceExhausted):
    """All of the helper's threads are busy and its queue is full.

    On a hung mount this is what callers get once the stuck calls fill the pool: failing at once
    is better than queueing work that would only time out.
    """


class BadRequest(errors.InvalidParameter):
    """The helper refused the call's arguments (for example a path outside the allowed root)."""
