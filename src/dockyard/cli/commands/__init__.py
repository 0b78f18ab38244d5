"""One module per verb: ``command(path, variant) -> Command`` (flags, usage) and
``run(cli, opts) -> int | None``; ``dockyard.cli.main`` maps command words to modules."""
