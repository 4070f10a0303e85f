"""The broker-only app Flower runs on: no database, no task imports."""

import os

from . import settings as config
from .factory import create_app

app = create_app(monitoring_only=True)
# Flower reads its basic auth from its environment only. Hand it the value
# settings validated: under Swarm that comes from a Docker secret, and the
# variable itself is empty, which would leave Flower open.
os.environ["FLOWER_BASIC_AUTH"] = config.load(config.FlowerSettings).flower_basic_auth
