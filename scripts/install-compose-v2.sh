#!/usr/bin/env bash
# Installs Compose v2 as a Docker CLI plugin (~/.docker/cli-plugins), from
# Debian trixie's docker-compose package, without touching the system's apt
# sources or packages: docker-compose v1 stays where it is. Does nothing when
# `docker compose` already works.
set -euo pipefail

plugin_dir=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker compose version >/dev/null 2>&1; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$plugin_dir"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$work/sources.list"
apt_options=(
  -o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::lists=$work/lists" -o "Dir::Cache::archives=$work/archives"
  -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root"
)
apt-get "${apt_options[@]}" update -qq
(cd "$work" && apt-get "${apt_options[@]}" download -qq docker-compose)
dpkg-deb --fsys-tarfile "$work"/docker-compose_*.deb |
  tar -xO ./usr/libexec/docker/cli-plugins/docker-compose >"$plugin_dir/docker-compose"
chmod +x "$plugin_dir/docker-compose"
echo "install-compose-v2: $(docker compose version)" >&2
