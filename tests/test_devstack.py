"""tools/devstack.py's own promises, where a test can tell."""

import socket

import pytest

from devstack import free_port

pytestmark = pytest.mark.unit


def test_a_port_is_handed_out_once_however_often_the_kernel_offers_it_again() -> None:
    # The kernel offers released ports again (a few hundred repeats in 3,000 binds here): a port
    # promised to one server must not be promised to another before the first binds it.
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))  # and it is free
