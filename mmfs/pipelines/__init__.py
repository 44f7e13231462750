"""Stage graph from a validated config, and the runners (local by default)."""
