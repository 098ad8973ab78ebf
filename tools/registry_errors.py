"""The registry's one error class (tools/registry.py re-exports it)."""


class RegistryError(Exception):
    """A one-line, secret-free reason an administrative act cannot be done."""
