"""sciwm: surrogates."""
