"""The app for the worker and beat: ``celery -A {{ cookiecutter.package_name }}.celery_app:app``."""

from .factory import create_app

app = create_app()
