"""dockyard-registry: a standalone OCI Distribution registry (``python -m dockyard.registry``).

``make_app(Registry(driver), auth)`` builds the aiohttp application; ``__main__`` is the
command line. The package imports only ``dockyard.oci``, ``dockyard.util``, the standard
library, aiohttp and bcrypt: it shares no state with the engine.
"""
