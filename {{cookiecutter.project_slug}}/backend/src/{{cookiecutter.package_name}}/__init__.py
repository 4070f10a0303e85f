"""{{ cookiecutter.project_name }}: Celery worker, beat and Flower around a transactional outbox."""
