#!/usr/bin/env bash
# Prints `export` lines for PYTHON_IMAGE, REDIS_IMAGE, POSTGRES_IMAGE and
# PROMETHEUS_IMAGE (the monitoring profile's), for
# `eval "$(scripts/choose-images.sh)"`. Images already set in the environment
# win (a private registry, say); otherwise the official images when they can be
# had, else stand-ins built from Debian trixie. One line on stderr says which.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

python_version=${PYTHON_VERSION:-3.13}
official_python=python:${python_version}-slim-trixie
official_redis=redis:8.0-alpine
official_postgres=postgres:17-alpine
official_prometheus=prom/prometheus:v3.5.0

obtainable() {
  docker image inspect "$1" >/dev/null 2>&1 || docker pull --quiet "$1" >/dev/null 2>&1
}

if [ -n "${PYTHON_IMAGE:-}" ] && [ -n "${REDIS_IMAGE:-}" ] && [ -n "${POSTGRES_IMAGE:-}" ]; then
  PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-$official_prometheus}
  source="from the environment"
elif obtainable "$official_python" && obtainable "$official_redis" && obtainable "$official_postgres"; then
  PYTHON_IMAGE=${PYTHON_IMAGE:-$official_python}
  REDIS_IMAGE=${REDIS_IMAGE:-$official_redis}
  POSTGRES_IMAGE=${POSTGRES_IMAGE:-$official_postgres}
  PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-$official_prometheus}
  source="official"
else
  [ "$python_version" = 3.13 ] || {
    echo "choose-images: no registry, and the offline stand-in is Python 3.13 only (asked: $python_version)" >&2
    exit 1
  }
  eval "$("$here/offline-images.sh")"
  source="Debian trixie stand-ins (no registry reachable)"
fi

echo "Images: $source: $PYTHON_IMAGE, $REDIS_IMAGE, $POSTGRES_IMAGE, $PROMETHEUS_IMAGE" >&2
printf 'export PYTHON_IMAGE=%q REDIS_IMAGE=%q POSTGRES_IMAGE=%q PROMETHEUS_IMAGE=%q\n' \
  "$PYTHON_IMAGE" "$REDIS_IMAGE" "$POSTGRES_IMAGE" "$PROMETHEUS_IMAGE"
