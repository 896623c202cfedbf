"""Which addresses LINKS URLs and redirects may reach (SSRF): public ones always; loopback,
link-local and private ones only when the archive came from an address of that class (a local
archive: loopback), or with ``CARTON_ALLOW_PRIVATE_URLS=1``.  The check is on every resolved
address of every hop.

No traffic leaves the loopback interface: names are resolved by a fake resolver, a server on
127.0.0.2 plays a public host (its class is patched), and ``http_range``'s sockets refuse to
connect anywhere but loopback, so a policy bug fails the test instead of sending a packet.
"""

from __future__ import annotations

import ipaddress
import socket
import types
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_runtime import http_range
from carton_runtime.cache import Cache
from carton_runtime.http_range import AddressPolicy, address_class
from carton_runtime.links_fetch import LinkFetcher

from .conftest import ORIGINAL_MODEL, Server, ServerFactory, pack_original, sha256_file
from .test_api import INPUTS, check_outputs

MODEL_SHA = sha256_file(ORIGINAL_MODEL)

FAKE_NAMES = {
    "metadata.test": "169.254.169.254",
    "intranet.test": "10.1.2.3",
    "innocent.test": "127.0.0.1",  # a harmless-looking name for loopback
}
PLAYS_PUBLIC = "127.0.0.2"
PLAYS_PRIVATE = "127.0.0.3"


class _LoopbackOnlySocket(socket.socket):
    def connect(self, address: Any) -> None:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        assert ip.is_loopback, f"a test tried to connect to {address}"
        super().connect(address)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake names, the stand-in classes, and sockets that only reach loopback."""
    real_resolve, real_class = http_range.resolve, http_range.address_class

    def resolve(host: str, port: int | None) -> list[tuple[Any, ...]]:
        if host in FAKE_NAMES:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (FAKE_NAMES[host], port or 80))]
        return real_resolve(host, port)

    def classify(ip: Any) -> str:
        return {PLAYS_PUBLIC: "public", PLAYS_PRIVATE: "private"}.get(str(ip)) or real_class(ip)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        raise AssertionError(f"no proxy is configured in these tests ({address})")

    fake_socket = types.SimpleNamespace(**{k: getattr(socket, k) for k in dir(socket) if not k.startswith("__")})
    fake_socket.socket = _LoopbackOnlySocket
    fake_socket.create_connection = create_connection
    monkeypatch.setattr(http_range, "socket", fake_socket)
    monkeypatch.setattr(http_range, "resolve", resolve)
    monkeypatch.setattr(http_range, "address_class", classify)
    monkeypatch.delenv("CARTON_ALLOW_PRIVATE_URLS", raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _public_server(servers: ServerFactory) -> Server:
    try:
        return servers.new(host=PLAYS_PUBLIC)
    except OSError as exc:  # pragma: no cover - 127.0.0.0/8 is all loopback on Linux
        pytest.skip(f"cannot listen on {PLAYS_PUBLIC}: {exc}")


def test_address_classes() -> None:
    cases = {
        "127.0.0.1": "loopback", "127.9.9.9": "loopback", "::1": "loopback", "0.0.0.0": "loopback", "::": "loopback",
        "::ffff:127.0.0.1": "loopback",
        "169.254.169.254": "link-local", "fe80::1": "link-local", "::ffff:169.254.1.1": "link-local",
        "10.0.0.1": "private", "172.16.5.4": "private", "192.168.1.1": "private", "100.64.0.1": "private",
        "fc00::1": "private", "fd12:3456::1": "private", "224.0.0.1": "private", "192.0.2.1": "private",
        "8.8.8.8": "public", "2606:4700:4700::1111": "public", "::ffff:1.1.1.1": "public",
    }
    for text, kind in cases.items():
        assert address_class(ipaddress.ip_address(text)) == kind, text


def test_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AddressPolicy(None).allowed == {"loopback"}
    assert AddressPolicy("http://127.0.0.1:1/a.carton").allowed == {"loopback"}
    assert AddressPolicy("http://[::1]:1/a.carton").allowed == {"loopback"}
    assert AddressPolicy("http://intranet.test/a.carton").allowed == {"private"}
    assert AddressPolicy(f"http://{PLAYS_PUBLIC}/a.carton").allowed == set()
    assert AddressPolicy("http://no-such-host.invalid/a.carton").allowed == set()
    assert AddressPolicy(None, allow_private=True).allowed == {"loopback", "link-local", "private"}
    monkeypatch.setenv("CARTON_ALLOW_PRIVATE_URLS", "1")
    assert AddressPolicy(f"http://{PLAYS_PUBLIC}/a.carton").allowed == {"loopback", "link-local", "private"}


@pytest.mark.parametrize(("name", "kind"), [("metadata.test", "link-local"), ("intranet.test", "private")])
def test_a_local_archive_may_not_link_to_link_local_or_private_addresses(server: Server, tmp_path: Path, name: str, kind: str) -> None:
    port = server.base.rsplit(":", 1)[1]
    path = pack_original(tmp_path / "l.carton", linked_files={MODEL_SHA: [f"http://{name}:{port}/files/model.pt"]})
    with pytest.raises(cf.CartonFormatError, match=rf"refusing to connect to {name} at {FAKE_NAMES[name]} \({kind}\)") as err:
        carton_sync.load(path)
    assert err.value.code == "E-LINKS-FETCH"
    assert "requests for a local archive may reach only public and loopback addresses" in err.value.message
    assert "CARTON_ALLOW_PRIVATE_URLS=1" in err.value.message


def test_a_local_archive_may_link_to_loopback(server: Server, tmp_path: Path) -> None:
    server.add_file("files/model.pt", ORIGINAL_MODEL)
    port = server.base.rsplit(":", 1)[1]
    urls = [server.url("files/model.pt"), f"http://innocent.test:{port}/files/model.pt"]
    for i, url in enumerate(urls):
        path = pack_original(tmp_path / f"ok{i}.carton", linked_files={MODEL_SHA: [url]})
        check_outputs(carton_sync.load(path).infer(INPUTS))
        Cache().clear()


def test_an_archive_from_a_public_host_may_not_link_to_loopback(server: Server, servers: ServerFactory, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    public = _public_server(servers)
    server.add_file("files/model.pt", ORIGINAL_MODEL)
    port = server.base.rsplit(":", 1)[1]
    for i, link in enumerate([server.url("files/model.pt"), f"http://innocent.test:{port}/files/model.pt"]):
        url = public.add_file(f"p{i}.carton", pack_original(tmp_path / f"p{i}.carton", linked_files={MODEL_SHA: [link]}))
        with pytest.raises(cf.CartonFormatError, match=r"refusing to connect to .*127\.0\.0\.1.*loopback") as err:
            carton_sync.load(url)
        assert err.value.code == "E-LINKS-FETCH"
        assert f"requests for the archive at {url} may reach only public addresses" in err.value.message
    assert not server.requests_for("files/model.pt")  # not one request reached the loopback server
    # allowed by the user
    monkeypatch.setenv("CARTON_ALLOW_PRIVATE_URLS", "1")
    check_outputs(carton_sync.load(public.url("p0.carton")).infer(INPUTS))
    assert len(server.requests_for("files/model.pt")) == 1


def test_an_archive_from_a_private_host_may_link_to_private_but_not_loopback(server: Server, servers: ServerFactory, tmp_path: Path) -> None:
    try:
        file_host, private_origin = servers.new(host=PLAYS_PRIVATE), servers.new(host=PLAYS_PRIVATE)
    except OSError as exc:  # pragma: no cover
        pytest.skip(f"cannot listen on {PLAYS_PRIVATE}: {exc}")
    file_host.add_file("files/model.pt", ORIGINAL_MODEL)
    server.add_file("files/model.pt", ORIGINAL_MODEL)
    path = pack_original(tmp_path / "pv.carton", linked_files={MODEL_SHA: [file_host.url("files/model.pt")]})
    url = private_origin.add_file("pv.carton", path)
    check_outputs(carton_sync.load(url).infer(INPUTS))
    Cache().clear()
    path = pack_original(tmp_path / "pv2.carton", linked_files={MODEL_SHA: [server.url("files/model.pt")]})
    with pytest.raises(cf.CartonFormatError, match="loopback") as err:
        carton_sync.load(private_origin.add_file("pv2.carton", path))
    assert err.value.code == "E-LINKS-FETCH"
    assert "may reach only public and private addresses" in err.value.message


def test_an_archive_from_loopback_may_link_to_loopback(server: Server, tmp_path: Path) -> None:
    server.add_file("files/model.pt", ORIGINAL_MODEL)
    path = pack_original(tmp_path / "lo.carton", linked_files={MODEL_SHA: [server.url("files/model.pt")]})
    check_outputs(carton_sync.load(server.add_file("lo.carton", path)).infer(INPUTS))


def test_every_redirect_hop_is_checked(server: Server, servers: ServerFactory, tmp_path: Path, cache_dir: Path, packed: Path) -> None:
    port = server.base.rsplit(":", 1)[1]
    to_metadata = server.url("redirect-to/" + urllib.parse.quote(f"http://metadata.test:{port}/latest/meta-data", safe=""))
    fetcher = LinkFetcher(Cache(cache_dir))  # a local archive's fetcher
    with pytest.raises(cf.CartonFormatError, match=r"metadata\.test.*refusing to connect to metadata\.test at 169\.254\.169\.254") as err:
        fetcher.fetch("model/model.pt", MODEL_SHA, [to_metadata])
    assert err.value.code == "E-LINKS-FETCH"
    # the archive the user named is on a public host; its redirect to loopback is refused
    public = _public_server(servers)
    server.add_file("real.carton", packed)
    public.add("x", b"")
    bounce = public.url("redirect-to/" + urllib.parse.quote(server.url("real.carton"), safe=""))
    with pytest.raises(carton.CartonRuntimeError, match=r"refusing to connect to 127\.0\.0\.1 \(a loopback address\)") as err2:
        carton_sync.get_model_info(bounce)
    assert err2.value.code == "E-RUNTIME-HTTP"
    assert not server.requests_for("real.carton")


def test_the_fetcher_option_overrides_the_environment(server: Server, servers: ServerFactory, cache_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server.add_file("files/model.pt", ORIGINAL_MODEL)
    origin = f"http://{PLAYS_PUBLIC}:1/a.carton"
    with pytest.raises(cf.CartonFormatError, match="refusing"):
        LinkFetcher(Cache(cache_dir), origin=origin).fetch("model/model.pt", MODEL_SHA, [server.url("files/model.pt")])
    assert LinkFetcher(Cache(cache_dir), origin=origin, allow_private=True).fetch("model/model.pt", MODEL_SHA, [server.url("files/model.pt")])
    Cache(cache_dir).clear()
    monkeypatch.setenv("CARTON_ALLOW_PRIVATE_URLS", "1")
    with pytest.raises(cf.CartonFormatError, match="refusing"):
        LinkFetcher(Cache(cache_dir), origin=origin, allow_private=False).fetch("model/model.pt", MODEL_SHA, [server.url("files/model.pt")])
