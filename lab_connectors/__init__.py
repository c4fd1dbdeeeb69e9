"""sciwm: lab_connectors."""
