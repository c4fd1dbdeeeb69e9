"""sciwm: scheduler."""
