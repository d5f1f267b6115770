"""venvd."""
