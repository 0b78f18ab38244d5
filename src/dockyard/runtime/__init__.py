"""dockyard's pure-Python OCI runtime, usable alone (``dockyard-runtime``) or as a library
(the shim): see ``dockyard.runtime.container`` and docs/architecture.md §2."""

from dockyard.runtime.container import (
    ExecProcess,
    InitProcess,
    Stdio,
    create_init,
    exec_process,
    exit_status,
)

__all__ = ["ExecProcess", "InitProcess", "Stdio", "create_init", "exec_process", "exit_status"]
