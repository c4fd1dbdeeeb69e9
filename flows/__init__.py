"""sciwm: flows."""
