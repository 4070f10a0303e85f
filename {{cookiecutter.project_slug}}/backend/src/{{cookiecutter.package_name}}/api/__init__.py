"""The HTTP front door (web=fastapi): orders in through the outbox, periodic
tasks on demand, health and metrics. Routes are thin, like tasks: parse,
call orders.py or the Celery app, answer."""
