"""Media probing, kind detection, limits and safe subprocess calls."""
