"""The package version (base layer: imports nothing), kept apart from `blackboard/__init__.py`
so that low layers (telemetry) can name it without importing the whole public API."""

__version__ = "0.1.0"
