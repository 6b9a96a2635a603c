"""Celery edge: the app and thin tasks that load ids and call the core."""
