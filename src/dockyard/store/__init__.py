"""Durable engine metadata (SQLite). Only this package opens the database."""

from dockyard.store.db import Database

__all__ = ["Database"]
