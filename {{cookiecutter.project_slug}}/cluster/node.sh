#!/bin/sh
# The entrypoint of a `make cluster` node: a Docker engine whose socket is
# also in /cluster (a folder of the host's), so the host drives each node.
#
# The cluster's registry is 127.0.0.1:$REGISTRY_PORT on the host; here the
# same address forwards to it, so one image name works on the host (which
# pushes) and on every node (which pull). Docker trusts 127.0.0.1 without TLS.
set -eu
socat "TCP-LISTEN:${REGISTRY_PORT},bind=127.0.0.1,fork,reuseaddr" TCP:registry:5000 &
# A cgroup parent per node: the host can remove what a killed node leaves.
exec dockerd --storage-driver fuse-overlayfs --cgroup-parent "/$(hostname)" \
    -H unix:///var/run/docker.sock -H unix:///cluster/docker.sock
