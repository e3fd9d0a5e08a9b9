"""compute floor."""
