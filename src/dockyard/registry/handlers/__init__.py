"""HTTP handlers, one module per resource; ``app.py`` routes to them after auth."""
