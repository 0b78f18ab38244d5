"""The kernel layer: small ctypes modules with C semantics, one syscall family each.

Every function raises ``OSError(errno, strerror, path)`` on failure, retries nothing and
decides no policy. Logic above this package takes a ``Syscalls`` object
(``dockyard.linux.syscalls``) so it can be unit-tested with ``RecordingSyscalls``
(``dockyard.linux.fake``) without root.

=============  ==========================================================
``libc``       the loaded C library, errno → OSError, raw syscall numbers
``mount``      mount, umount2, pivot_root, propagation, option parsing
``ns``         unshare, setns, CLONE_* flags, namespace names and paths
``caps``       capget/capset, capability names, prctl (bounding set, NNP, ...)
``proc``       hostname, ids, rlimits, close_range, pidfd_open
``tty``        pty allocation from a devpts instance, ctty, window size
``net``        bring a link up (loopback in a fresh network namespace)
``syscalls``   the ``Syscalls`` Protocol and ``LinuxSyscalls``
``fake``       ``RecordingSyscalls``
=============  ==========================================================
"""
