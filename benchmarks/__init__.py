"""Scripts that print IAMAP's speed and memory figures (run from the repository root)."""
