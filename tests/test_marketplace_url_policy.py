"""Which repository URLs the server fetches, as a table: (url, allow_local, accepted)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agnes_mcp.errors import MarketplaceUrlRefused
from agnes_mcp.marketplace.url_policy import check_fetch_url, check_source_url

SECRET = "s3cr3t-pass"

CASES = [
    # https to a public host: always
    ("https://git.example.com/team/plugins.git", False, True),
    ("https://git.example.com:8443/team/plugins.git", False, True),
    ("HTTPS://git.example.com/team/plugins", True, True),
    # credentials in the URL: never, and never echoed
    (f"https://reader:{SECRET}@git.example.com/team/plugins.git", False, False),
    (f"https://reader:{SECRET}@127.0.0.1/plugins.git", True, False),
    (f"https://{SECRET}@git.example.com/team/plugins.git", False, False),
    (f"http://x:{SECRET}@localhost:8080/plugins.git", True, False),
    (f"https://git.example.com/team/plugins.git?private_token={SECRET}", False, False),
    (f"https://git.example.com/team/plugins.git#{SECRET}", False, False),
    # a host git would look up under another name than the one checked (it decodes '%xx'
    # and turns a non-ASCII name into its xn-- form): never
    ("https://bücher.example/plugins.git", True, False),
    ("https://%6cocalhost/plugins.git", True, False),
    ("https://git%2eexample.com/plugins.git", False, False),
    ("https://xn--bcher-kva.example/plugins.git", False, True),
    ("https://build_01.example.com/plugins.git", False, True),
    # plain http: only to a local host with allow_local
    ("http://git.example.com/team/plugins.git", False, False),
    ("http://git.example.com/team/plugins.git", True, False),
    ("http://localhost:8080/plugins.git", False, False),
    ("http://localhost:8080/plugins.git", True, True),
    ("http://127.0.0.1:9418/plugins.git", True, True),
    # loopback and private hosts: only with allow_local
    ("https://localhost/plugins.git", False, False),
    ("https://build.localhost/plugins.git", False, False),
    ("https://127.0.0.1/plugins.git", False, False),
    ("https://127.1/plugins.git", False, False),
    ("https://2130706433/plugins.git", False, False),
    ("https://0x7f.0.0.1/plugins.git", False, False),
    ("https://10.1.2.3/plugins.git", False, False),
    ("https://10.1.2.3/plugins.git", True, True),
    ("https://192.168.1.20/plugins.git", False, False),
    ("https://172.16.0.5/plugins.git", False, False),
    ("https://[::1]/plugins.git", False, False),
    ("https://[::1]/plugins.git", True, True),
    ("https://[::ffff:127.0.0.1]/plugins.git", False, False),
    ("https://[fd00::5]/plugins.git", False, False),
    # link-local (cloud metadata), unspecified, multicast: never
    ("https://169.254.169.254/latest/meta-data", False, False),
    ("http://169.254.169.254/latest/meta-data", True, False),
    ("https://[fe80::1]/plugins.git", True, False),
    ("https://0.0.0.0/plugins.git", True, False),
    ("https://224.0.0.1/plugins.git", True, False),
    # local repositories: only with allow_local
    ("file:///srv/git/plugins.git", False, False),
    ("file:///srv/git/plugins.git", True, True),
    ("/srv/git/plugins.git", False, False),
    ("/srv/git/plugins.git", True, True),
    ("./plugins", True, True),
    # other transports: never
    ("ssh://git@git.example.com/team/plugins.git", True, False),
    ("git@git.example.com:team/plugins.git", True, False),
    ("git://git.example.com/team/plugins.git", True, False),
    ("ftp://git.example.com/plugins.git", True, False),
    ("ext::sh -c touch% /tmp/pwned", True, False),
    # not URLs at all
    ("", True, False),
    ("   ", True, False),
    ("-uhttps://git.example.com/x", True, False),
    ("https://git.example.com/team plugins.git", False, False),
    ("https://git.example.com:99999/plugins.git", True, False),  # no such port
    ("https://git.example.com:0/plugins.git", True, False),
    ("https://git.example.com:git/plugins.git", True, False),
    ("https:///plugins.git", False, False),
]


@pytest.mark.parametrize(("url", "allow_local", "accepted"), CASES)
def test_url_policy(url: str, allow_local: bool, accepted: bool) -> None:
    if accepted:
        checked = check_source_url(url, allow_local=allow_local, resolve=False)
        assert checked
        if url.startswith(("/", "./", "file:")):
            assert Path(checked).is_absolute()
        return
    with pytest.raises(MarketplaceUrlRefused) as refused:
        check_source_url(url, allow_local=allow_local, resolve=False)
    error = refused.value
    assert error.code == "marketplace_url_refused" and error.status == 422
    assert SECRET not in error.message and SECRET not in (error.hint or "")
    assert error.hint or error.message.endswith(".")


def test_a_local_url_names_the_setting_that_allows_it() -> None:
    with pytest.raises(MarketplaceUrlRefused) as refused:
        check_source_url("file:///srv/git/plugins.git", allow_local=False)
    assert "marketplace.allow_local" in (refused.value.hint or "")


@pytest.mark.parametrize(
    ("address", "allow_local", "accepted"),
    [
        ("93.184.215.14", False, True),
        ("10.0.0.7", False, False),
        ("10.0.0.7", True, True),
        ("127.0.0.1", False, False),
        ("169.254.169.254", True, False),
    ],
)
def test_a_host_name_is_judged_by_the_addresses_it_resolves_to(
    monkeypatch: pytest.MonkeyPatch, address: str, allow_local: bool, accepted: bool
) -> None:
    """The name is looked up when the marketplace is added and again before every fetch
    (DNS answers change); a stand-in resolver gives the address (the network is off)."""

    def resolver(
        host: str, port: object, *args: object, **kwargs: object
    ) -> list[tuple[object, ...]]:
        assert host == "git.example.com"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443))]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    url = "https://git.example.com/team/plugins.git"
    if accepted:
        assert check_source_url(url, allow_local=allow_local) == url
    else:
        with pytest.raises(MarketplaceUrlRefused):
            check_source_url(url, allow_local=allow_local)
    assert check_source_url(url, allow_local=False, resolve=False) == url  # no look-up asked


def test_a_fetch_is_pinned_to_the_addresses_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    """What git is given for ``http.curloptResolve``: every address the name resolved to
    (IPv6 in brackets), the URL's port or the scheme's; a 'localhost' name, never looked
    up, is pinned to loopback (git's resolver could send it anywhere); an IP literal or a
    path has nothing to pin."""

    def resolver(host: str, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        assert host == "git.example.com"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800:21f::1", 443, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    pinned = check_fetch_url("https://git.example.com/team/plugins.git", allow_local=False)
    assert pinned.pinned == "git.example.com:443:93.184.215.14,[2606:2800:21f::1]"
    assert check_fetch_url("https://git.example.com:8443/p.git", allow_local=False).pinned == (
        "git.example.com:8443:93.184.215.14,[2606:2800:21f::1]"
    )
    local = check_fetch_url("http://git.localhost/p.git", allow_local=True)
    assert local.pinned == "git.localhost:80:127.0.0.1,[::1]"
    assert check_fetch_url("http://127.0.0.1:9/p.git", allow_local=True).pinned is None
    assert check_fetch_url("/srv/git/p.git", allow_local=True).pinned is None


def test_a_local_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_source_url("./repos/plugins", allow_local=True) == str(
        tmp_path / "repos" / "plugins"
    )
