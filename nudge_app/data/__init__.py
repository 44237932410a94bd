"""Data files shipped with the platform (see README.md here)."""
