"""Vendor connectors: the shared upstream HTTP layer, the host guard, and one module per vendor."""
