"""The ``dockyard`` command line (docker CLI 28 compatible); entry point ``dockyard.cli.main``.

Kept import-free: the CLI's start-up time is measured, and every command imports only what
it uses (``commands/<verb>.py`` modules are loaded on demand).
"""
