from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

from {{ cookiecutter.package_name }}.db import connect_when_ready
from {{ cookiecutter.package_name }}.models import Base
from {{ cookiecutter.package_name }}.settings import get_settings

if context.config.config_file_name:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

engine = create_engine(get_settings().sqlalchemy_url)
with connect_when_ready(engine) as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
