"""The SCHEDULER address: read as tcp://host:port, refused when malformed, checked by connecting (stdlib only)."""

from __future__ import annotations

import socket

import pytest

from engine.errors import ParameterError
from engine.scheduler import check_scheduler, scheduler_address


def test_an_address_without_scheme_means_tcp():
    assert scheduler_address(" 10.0.0.2:8786 ") == ("tcp://10.0.0.2:8786", "10.0.0.2", 8786)
    assert scheduler_address("tls://host:9000") == ("tls://host:9000", "host", 9000)


@pytest.mark.parametrize("value", ["localhost", "http://host:8786", "tcp://host:port"])
def test_a_malformed_address_is_refused_naming_scheduler(value):
    with pytest.raises(ParameterError, match="is not a Dask scheduler address") as info:
        scheduler_address(value)
    assert info.value.parameter == "SCHEDULER"


def test_a_listening_port_is_accepted_and_a_closed_one_refused_with_the_way_to_start_one():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert check_scheduler(f"127.0.0.1:{port}") == f"tcp://127.0.0.1:{port}"
    with pytest.raises(ParameterError, match="cannot reach a Dask scheduler") as info:
        check_scheduler(f"tcp://127.0.0.1:{port}")
    assert "dask scheduler" in str(info.value)
