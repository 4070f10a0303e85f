"""The worker's Celery node name, as Flower and `celery inspect` show it: its
container's name (`celery@{{ cookiecutter.package_name }}-worker-2`), not the container id that
Docker makes its hostname.

Compose cannot give each replica a hostname of its own, but Docker's embedded
DNS answers a reverse lookup of a container's address with the container's
name. A hostname that is not a container id (Swarm's templated ones, or one
set by hand) is used as it is. Standard library only: one small DNS query.
"""

import re
import socket
import struct

DOCKER_DNS = ("127.0.0.11", 53)
CONTAINER_ID = re.compile(r"[0-9a-f]{12}")
PTR, IN = 12, 1


def worker_nodename() -> str:
    hostname = socket.gethostname()
    if not CONTAINER_ID.fullmatch(hostname):
        return f"celery@{hostname}"
    try:
        name = container_name(socket.gethostbyname(hostname))
    except OSError:
        name = None
    return f"celery@{name or hostname}"


def container_name(address: str, server: tuple[str, int] = DOCKER_DNS, timeout: float = 1.0) -> str | None:
    """The first label of the PTR record for `address`: `project-worker-2`."""
    query = encode_name(".".join(reversed(address.split("."))) + ".in-addr.arpa")
    request = struct.pack(">6H", 0x5C5C, 0x0100, 1, 0, 0, 0) + query + struct.pack(">2H", PTR, IN)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(timeout)
        udp.sendto(request, server)
        response = udp.recv(512)
    if struct.unpack(">H", response[6:8])[0] == 0:
        return None
    # The answer follows the question: its owner name, type, class, TTL and
    # length (10 bytes), then the name it points to.
    _, offset = read_name(response, len(request))
    labels, _ = read_name(response, offset + 10)
    return labels[0] if labels else None


def encode_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"


def read_name(message: bytes, offset: int) -> tuple[list[str], int]:
    """The labels of the name at `offset`, up to a compression pointer, and
    the offset after it."""
    labels = []
    while (length := message[offset]) and length < 0xC0:
        labels.append(message[offset + 1 : offset + 1 + length].decode())
        offset += 1 + length
    return labels, offset + (2 if length else 1)
