"""What the app refuses without a server: binds decided by resolved addresses, login back-off, the
annotator under --auth, export folders that do not pile up."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from glore_app import main
from glore_app.login import LoginThrottle
from glore_app.main import UsageError, check_bind, is_loopback


@pytest.fixture
def hosts(monkeypatch):
    """A fake resolver: name -> addresses (literal addresses resolve to themselves)."""
    table = {
        "127.evil.example": ["10.1.2.3"],
        "127.0.0.1.nip.example": ["127.0.0.1", "203.0.113.9"],  # one loopback address is not enough
        "localhost": ["127.0.0.1", "::1"],
        "loop.example": ["127.0.0.5"],
    }
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            family = {True: socket.AF_INET6, False: socket.AF_INET}
            return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, 0)) for a in table[host]]
        if host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.mark.parametrize("host", ["127.evil.example", "127.0.0.1.nip.example", "0.0.0.0", "::", "nowhere.invalid"])
def test_a_host_is_loopback_only_if_every_address_it_resolves_to_is(hosts, host):
    assert not is_loopback(host)
    with pytest.raises(UsageError, match="--auth"):
        check_bind(host, None)
    with pytest.raises(UsageError, match="--auth"):
        main.settings(["--host", host])


@pytest.mark.parametrize(
    "host, bound",
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("localhost", "127.0.0.1"),
        ("loop.example", "127.0.0.5"),
        ("127.0.0.2", "127.0.0.2"),
    ],
)
def test_loopback_hosts_bind_the_address_they_resolved_to(hosts, host, bound):
    assert is_loopback(host) and check_bind(host, None) == bound


def test_with_auth_any_host_may_be_bound(hosts):
    assert check_bind("127.evil.example", ("ann", "pw")) == "127.evil.example"


def test_failed_logins_back_off_per_address_and_a_success_clears_it():
    now = [1000.0]
    throttle = LoginThrottle(free_failures=3, base_delay_s=1.0, max_delay_s=8.0, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.failed("10.0.0.1") == 0 and throttle.wait_s("10.0.0.1") == 0
    waits = [throttle.failed("10.0.0.1") for _ in range(5)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]  # doubling, capped
    assert throttle.wait_s("10.0.0.2") == 0  # another address is not affected
    now[0] += 8.0
    assert throttle.wait_s("10.0.0.1") == 0
    throttle.succeeded("10.0.0.1")
    assert throttle.failed("10.0.0.1") == 0  # counting starts again


def test_the_throttle_forgets_the_oldest_addresses_first(monkeypatch):
    from glore_app import login

    monkeypatch.setattr(login, "MAX_ADDRESSES", 3)
    throttle = LoginThrottle(free_failures=0, clock=lambda: 0.0)
    for i in range(5):
        throttle.failed(f"10.0.0.{i}")
    assert throttle.wait_s("10.0.0.0") == 0 and throttle.wait_s("10.0.0.4") > 0


def request_of(username):
    return SimpleNamespace(username=username)


def test_with_auth_the_annotator_is_the_logged_in_user():
    from glore_app.ui import annotator_for

    alice = request_of("alice")
    assert [annotator_for(alice, name) for name in (None, "", "default", "alice", " alice ")] == ["alice"] * 5
    with pytest.raises(ValueError, match="logged in as 'alice'"):
        annotator_for(alice, "bob")
    assert annotator_for(request_of(None), "bob") == "bob"  # without --auth the name is free
    with pytest.raises(ValueError, match="annotator name must be text"):
        annotator_for(request_of(None), None)


def test_the_annotator_box_is_fixed_to_the_logged_in_user():
    from glore_app.ui import annotator_name

    update = annotator_name(request_of("alice"))
    assert update["value"] == "alice" and update["interactive"] is False
    assert annotator_name(request_of(None)) == "default"


def test_export_folders_keep_only_the_newest(tmp_path):
    from glore_app.export_tab import ExportFolder

    exports = ExportFolder(keep=2)
    try:
        made = []
        for _ in range(5):
            made.append(exports.new())
            (made[-1] / "x.jsonl").write_text("{}\n")
        assert sorted(p.name for p in exports.root.iterdir()) == [made[-2].name, made[-1].name]
        assert (made[-1] / "x.jsonl").read_text() == "{}\n"  # the latest download is still there
    finally:
        exports.remove()
    assert not exports.root.exists()


def test_launch_refuses_a_name_that_only_looks_like_loopback(hosts):
    from glore_app.main import launch_app

    class NotLaunched:
        def launch(self, **kwargs):
            raise AssertionError("launched")

    with pytest.raises(UsageError, match="10.1.2.3"):
        launch_app(NotLaunched(), "127.evil.example")
