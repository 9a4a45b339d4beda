"""lakeline-bio."""
