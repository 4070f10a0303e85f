#!/usr/bin/env bash
# Installs promtool, Prometheus's checker, for `make lint` (it checks
# monitoring/ and runs the alert rules' unit tests). Unpacked from the
# distribution's prometheus package, Debian's or Ubuntu's, so no Prometheus
# server is installed or started. Does nothing when promtool is on PATH.
# Run as root (apt-get update); DEST, /usr/local/bin by default, says where.
set -euo pipefail

dest=${DEST:-/usr/local/bin}

if command -v promtool >/dev/null; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
apt-get update -qq
(cd "$work" && apt-get -o APT::Sandbox::User=root download -qq prometheus)
dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$dest/promtool"
chmod +x "$dest/promtool"
echo "install-promtool: $("$dest/promtool" --version 2>&1 | sed -n 1p)" >&2
