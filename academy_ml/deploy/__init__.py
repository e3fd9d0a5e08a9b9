"""deploy floor."""
