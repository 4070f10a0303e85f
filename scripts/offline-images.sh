#!/usr/bin/env bash
# Builds stand-ins for the official python, redis, postgres and prometheus images from
# Debian trixie packages (debootstrap + docker import), for machines that
# cannot pull from a registry. Nothing is pushed anywhere. Progress goes to
# stderr; stdout gets the `export ...` line that points Compose at them.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
suite=trixie
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${OFFLINE_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/celery-stack-debootstrap}

PYTHON_STANDIN=standin/python:3.13-trixie
REDIS_STANDIN=standin/redis:8.0-trixie
POSTGRES_STANDIN=standin/postgres:17-trixie
PROMETHEUS_STANDIN=standin/prometheus:trixie

fail() { echo "offline-images: $*" >&2; exit 1; }

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  [ "$(id -u)" = 0 ] || fail "debootstrap is missing; install it (apt-get install debootstrap) or run as root"
  apt-get install -y -qq debootstrap >/dev/null || {
    apt-get update -qq >&2 && apt-get install -y -qq debootstrap >/dev/null
  } || fail "could not install debootstrap from the host's apt sources"
}

# rootfs_for PACKAGES: prints the path of a fresh minbase rootfs with PACKAGES.
rootfs_for() {
  local root
  root=$(mktemp -d /tmp/standin-rootfs.XXXXXX)
  mkdir -p "$cache"
  debootstrap --variant=minbase --cache-dir="$cache" --include="$1" \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; fail "debootstrap of $suite from $mirror failed"; }
  rm -f "$root.log"
  echo "$root"
}

# import_rootfs ROOT TAG [--change ...]: tars ROOT into image TAG, then removes ROOT.
import_rootfs() {
  local root=$1 tag=$2
  shift 2
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc "$root"/usr/share/man
  tar --numeric-owner -C "$root" -c . | docker import "$@" - "$tag" >/dev/null
  rm -rf "$root"
  echo "offline-images: built $tag" >&2
}

# A stand-in is rebuilt when its entrypoint changed: the image carries the
# script's hash as a label.
standin_hash() { sha256sum "$here/standin/$1-entrypoint.sh" | cut -c1-16; }
built_hash() { docker image inspect --format '{{ index .Config.Labels "standin.entrypoint" }}' "$1" 2>/dev/null; }
missing() { ! docker image inspect "$1" >/dev/null 2>&1; }
stale() { missing "$1" || [ "$(built_hash "$1")" != "$(standin_hash "$2")" ]; }

build_python() {
  local root
  root=$(rootfs_for python3.13,python3.13-venv,ca-certificates,passwd)
  # Trust the host's CA bundle, so pip inside a build works behind an
  # intercepting proxy.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  ln -sf python3.13 "$root/usr/bin/python3"
  ln -sf python3.13 "$root/usr/bin/python"
  import_rootfs "$root" "$PYTHON_STANDIN" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]'
}

build_redis() {
  local root
  root=$(rootfs_for redis-server)
  install -m 0755 "$here/standin/redis-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
  mkdir -p "$root/data"
  import_rootfs "$root" "$REDIS_STANDIN" \
    --change "LABEL standin.entrypoint=$(standin_hash redis)" \
    --change 'WORKDIR /data' \
    --change 'EXPOSE 6379' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["redis-server"]'
}

build_postgres() {
  local root
  root=$(rootfs_for postgresql-17)
  install -m 0755 "$here/standin/postgres-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
  import_rootfs "$root" "$POSTGRES_STANDIN" \
    --change "LABEL standin.entrypoint=$(standin_hash postgres)" \
    --change 'ENV PATH=/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["postgres"]'
}

# Debian's prometheus package; laid out like the official image (user nobody,
# data in /prometheus, the config in /etc/prometheus).
build_prometheus() {
  local root
  root=$(rootfs_for prometheus)
  mkdir -p "$root/prometheus"
  chown 65534:65534 "$root/prometheus"
  import_rootfs "$root" "$PROMETHEUS_STANDIN" \
    --change 'USER nobody' \
    --change 'WORKDIR /prometheus' \
    --change 'EXPOSE 9090' \
    --change 'ENTRYPOINT ["/usr/bin/prometheus"]' \
    --change 'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
}

ensure_debootstrap
if missing "$PYTHON_STANDIN"; then build_python; fi
if stale "$REDIS_STANDIN" redis; then build_redis; fi
if stale "$POSTGRES_STANDIN" postgres; then build_postgres; fi
if missing "$PROMETHEUS_STANDIN"; then build_prometheus; fi
echo "export PYTHON_IMAGE=$PYTHON_STANDIN REDIS_IMAGE=$REDIS_STANDIN POSTGRES_IMAGE=$POSTGRES_STANDIN PROMETHEUS_IMAGE=$PROMETHEUS_STANDIN"
