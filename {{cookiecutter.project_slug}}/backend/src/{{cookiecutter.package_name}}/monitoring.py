"""The broker-only app Flower runs on: no database, no task imports."""

from .factory import create_app

app = create_app(monitoring_only=True)
