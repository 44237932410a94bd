"""Service functions: the domain writes. They change objects and flush, never commit."""
