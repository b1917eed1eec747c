"""Route modules, one per resource: ocr, models, envs, status."""
