"""The ASGI application: protocol routes that translate to the serving service."""
