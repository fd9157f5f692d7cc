"""The SCHEDULER address: read as tcp://host:port, refused when malformed, checked by connecting and by the first
bytes a Dask scheduler sends (stdlib only); what is not a Dask scheduler fails within seconds, naming SCHEDULER."""

from __future__ import annotations

import struct
import time

import pytest

from engine import scheduler
from engine.errors import ParameterError
from engine.scheduler import check_scheduler, scheduler_address

from testsupport.fake_servers import greeter, http_server


def test_an_address_without_scheme_means_tcp():
    assert scheduler_address(" 10.0.0.2:8786 ") == ("tcp://10.0.0.2:8786", "10.0.0.2", 8786)
    assert scheduler_address("tls://host:9000") == ("tls://host:9000", "host", 9000)


@pytest.mark.parametrize("value", ["localhost", "http://host:8786", "tcp://host:port"])
def test_a_malformed_address_is_refused_naming_scheduler(value):
    with pytest.raises(ParameterError, match="is not a Dask scheduler address") as info:
        scheduler_address(value)
    assert info.value.parameter == "SCHEDULER"


def test_a_port_that_greets_as_dask_is_accepted_and_a_closed_one_refused_with_the_way_to_start_one():
    with greeter(struct.pack("<QQQ", 42, 1, 26) + b"\x83" + b"x" * 41) as address:
        assert check_scheduler(address.removeprefix("tcp://")) == address
        port = int(address.rsplit(":", 1)[1])
    with pytest.raises(ParameterError, match="cannot reach a Dask scheduler") as info:
        check_scheduler(f"tcp://127.0.0.1:{port}")
    assert "dask scheduler" in str(info.value)


def test_a_real_dask_scheduler_passes_the_check():
    import asyncio

    from distributed import Scheduler

    async def check():
        async with Scheduler(port=0, dashboard_address=None) as server:
            return server.address, await asyncio.get_running_loop().run_in_executor(None, check_scheduler,
                                                                                     server.address)

    address, checked = asyncio.run(check())
    assert checked == address


def test_a_web_server_at_the_address_fails_within_seconds_naming_scheduler(monkeypatch):
    monkeypatch.setattr(scheduler, "HANDSHAKE_SECONDS", 1)
    with http_server() as address:
        started = time.monotonic()
        with pytest.raises(ParameterError) as info:
            check_scheduler(address)
        assert time.monotonic() - started < 5
    assert info.value.parameter == "SCHEDULER"
    assert f"something answers at {address}, but not a Dask scheduler: it sent nothing within 1 s" in str(info.value)
    assert "dashboard, 8787, is a web page" in str(info.value) and "leave SCHEDULER empty" in str(info.value)


@pytest.mark.parametrize("greeting, said", [
    (b"SSH-2.0-OpenSSH_9.2\r\n", "it sent 'SSH-2.0-OpenSSH_', which is not a Dask message"),
    (b"HTTP/1.0 200 OK\r\n\r\n", "it sent 'HTTP/1.0 200 OK\\r', which is not a Dask message"),
    (b"\x00" * 16, "which is not a Dask message"),
])
def test_a_service_that_greets_with_something_else_is_refused_quoting_it(greeting, said):
    with greeter(greeting) as address, pytest.raises(ParameterError) as info:
        check_scheduler(address)
    assert info.value.parameter == "SCHEDULER" and said in str(info.value)
