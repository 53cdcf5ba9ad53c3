"""A third SMS provider for the registry test (`test_provider_registry.py`)."""
