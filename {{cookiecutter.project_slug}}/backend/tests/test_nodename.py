"""Worker node names from Docker's DNS: parsed from a real answer of Docker's
embedded DNS server, served by a real UDP server on loopback."""

import socket
import threading

import pytest

from {{ cookiecutter.package_name }} import nodename

# Docker 20.10's embedded DNS, asked for the PTR record of 192.168.80.2: the
# container `ptrtest-w-1` on the network `ptrtest_default`.
DOCKER_ANSWER = (
    b"\x124\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    b"\x012\x0280\x03168\x03192\x07in-addr\x04arpa\x00\x00\x0c\x00\x01"
    b"\x012\x0280\x03168\x03192\x07in-addr\x04arpa\x00\x00\x0c\x00\x01\x00\x00\x02X\x00\x1d"
    b"\x0bptrtest-w-1\x0fptrtest_default\x00"
)
NO_ANSWER = DOCKER_ANSWER[:7] + b"\x00" + DOCKER_ANSWER[8:48]


@pytest.fixture
def dns_server():
    """Answers every query on a loopback UDP port with `answer[0]`."""
    answer = [DOCKER_ANSWER]
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                _, client = server.recvfrom(512)
            except OSError:
                return
            server.sendto(answer[0], client)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname(), answer
    server.close()


def test_a_container_address_resolves_to_its_container_name(dns_server):
    address, _ = dns_server
    assert nodename.container_name("192.168.80.2", server=address) == "ptrtest-w-1"


def test_an_address_docker_does_not_know_has_no_name(dns_server):
    address, answer = dns_server
    answer[0] = NO_ANSWER
    assert nodename.container_name("192.168.80.9", server=address) is None


def test_a_hostname_that_is_not_a_container_id_is_the_node_name(monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "worker-2")
    assert nodename.worker_nodename() == "celery@worker-2"
