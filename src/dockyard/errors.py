"""The one error taxonomy of dockyard.

Every subsystem raises one of these classes (or a subclass of one) with context,
``raise NotFound(f"no such container: {ref}") from exc``. Nothing below the daemon knows
HTTP: ``dockyard.daemon.errors`` maps the classes to status codes in one table, and
``dockyard.client.errors`` maps status codes back to the same classes.

Messages are lower-case with no trailing period and name the object or path that failed,
except where a message is docker's own wording that clients match on (``No such container: x``).

::

    DockyardError
    ├── NotFound             404  no such container / image / exec / network / volume
    │   └── NoSuchImage      404  the image is not in the local store (drives ``run``'s auto-pull)
    ├── InvalidArgument      400  malformed input: bad JSON, bad name, bad flag value
    ├── AlreadyExists        409  a name or object exists already
    ├── Conflict             409  the object is in a state that forbids the operation
    ├── FailedPrecondition   409  (alias class for state preconditions; maps like Conflict)
    ├── Unauthorized         401  credentials missing or wrong
    ├── PermissionDenied     403  forbidden even with credentials
    ├── NotModified          304  nothing to do (start a running container, stop a stopped one)
    ├── Unsupported          501  not implemented
    ├── Unavailable          503  a dependency is down (registry, shim, launcher)
    └── Internal             500  everything else

``OCIRuntimeError`` is an ``Internal`` raised when the runtime could not create or start the
container process; its message follows runc's wording so the docker CLI can pick the exit
code (126 for "permission denied", 127 for "executable file not found" / "no such file").
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "Conflict",
    "DockyardError",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NoSuchImage",
    "NotFound",
    "NotModified",
    "OCIRuntimeError",
    "PermissionDenied",
    "Unauthorized",
    "Unavailable",
    "Unsupported",
]


class DockyardError(Exception):
    """Base class of every error dockyard raises on purpose."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class NotFound(DockyardError):
    """The named object does not exist."""


class NoSuchImage(NotFound):
    """The image is not in the local store."""


class InvalidArgument(DockyardError):
    """The request is malformed; the message names the field or value."""


class AlreadyExists(DockyardError):
    """An object with that name or id exists already."""


class Conflict(DockyardError):
    """The object's state forbids the operation; the message names both states."""


class FailedPrecondition(DockyardError):
    """A precondition of the operation does not hold."""


class Unauthorized(DockyardError):
    """Authentication is missing or wrong."""


class PermissionDenied(DockyardError):
    """The operation is forbidden."""


class NotModified(DockyardError):
    """Nothing to do: the object is already in the requested state."""


class Unsupported(DockyardError):
    """The operation or option is not implemented."""


class Unavailable(DockyardError):
    """A service the operation needs is not reachable."""


class Internal(DockyardError):
    """An unexpected failure; the message says what was being done."""


class OCIRuntimeError(Internal):
    """The runtime failed to create or start the container's process."""
