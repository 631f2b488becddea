"""SSRF rules: only Twilio media URLs of the tenant's account, on allowed hosts."""

from __future__ import annotations

import httpx
import pytest
from transcription.media_url import (
    AllowList,
    UrlNotAllowed,
    check_media_url,
    check_redirect,
    same_origin,
)

AC = "AC" + "e" * 32
MM = "MM" + "1" * 32
PATH = f"/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/ME{'2' * 32}"
ALLOWED = AllowList.parse("api.twilio.com, mms.twiliocdn.com,127.0.0.1:8090,[::1]:9000,"
                          "host.docker.internal:8090")


def check(url: str) -> httpx.URL:
    return check_media_url(url, account_sid=AC, message_sid=MM, allowed=ALLOWED)


@pytest.mark.parametrize("url", [
    f"https://api.twilio.com{PATH}",
    f"https://api.twilio.com:443{PATH}",
    f"https://API.Twilio.com{PATH}",
    # The simulator: plain http, but only to an endpoint listed with its port.
    f"http://127.0.0.1:8090{PATH}",
    f"http://[::1]:9000{PATH}",
    f"http://host.docker.internal:8090{PATH}",
    f"https://host.docker.internal:8090{PATH}",
])
def test_twilio_media_urls_on_allowed_hosts_are_fetched(url: str) -> None:
    assert check(url).raw_path.decode() == PATH


@pytest.mark.parametrize(("url", "why"), [
    (f"https://evil.example{PATH}", "not an allowed media host"),
    (f"https://api.twilio.com.evil.example{PATH}", "not an allowed media host"),
    (f"http://api.twilio.com{PATH}", "not an allowed media host"),  # listed without a port
    (f"http://api.twilio.com:80{PATH}", "not an allowed media host"),
    (f"https://host.docker.internal{PATH}", "not an allowed media host"),  # another port
    (f"https://api.twilio.com:8443{PATH}", "not an allowed media host"),
    (f"http://127.0.0.1:8091{PATH}", "not an allowed media host"),  # another local port
    (f"http://169.254.169.254{PATH}", "not an allowed media host"),
    (f"ftp://api.twilio.com{PATH}", "not an allowed media host"),
    (f"https://api.twilio.com@evil.example{PATH}", "not a plain absolute URL"),
    (f"https://user:secret@api.twilio.com{PATH}", "not a plain absolute URL"),
    (f"https://api.twilio.com\\@evil.example{PATH}", "not a plain absolute URL"),
    (f"https://api.twilio.com{PATH}#x", "not a plain absolute URL"),
    (f"//api.twilio.com{PATH}", "not a plain absolute URL"),
    ("not a url", "not a plain absolute URL"),
    (f"https://api.twilio.com{PATH}?redirect=https://evil.example", "not a Twilio media path"),
    (f"https://api.twilio.com{PATH}/../../../../admin", "not a Twilio media path"),
    (f"https://api.twilio.com{PATH}.json", "not a Twilio media path"),
    ("https://api.twilio.com/2010-04-01/Accounts.json", "not a Twilio media path"),
    (f"https://api.twilio.com{PATH.replace(AC, 'AC' + 'f' * 32)}", "another account"),
    (f"https://api.twilio.com{PATH.replace(MM, 'MM' + 'f' * 32)}", "another message"),
])
def test_anything_else_is_refused_before_any_request(url: str, why: str) -> None:
    with pytest.raises(UrlNotAllowed, match=why) as refused:
        check(url)
    assert refused.value.reason == "media_url_not_allowed"


@pytest.mark.parametrize(("location", "target"), [
    ("https://mms.twiliocdn.com/AC/abc?Expires=1&Signature=x",
     "https://mms.twiliocdn.com/AC/abc?Expires=1&Signature=x"),
    ("/cdn/token", "https://api.twilio.com/cdn/token"),
])
def test_redirects_to_allowed_hosts_are_followed(location: str, target: str) -> None:
    assert str(check_redirect(check(f"https://api.twilio.com{PATH}"), location, ALLOWED)) == target


@pytest.mark.parametrize("location", [
    "https://evil.example/x", "//evil.example/x", "http://mms.twiliocdn.com/x",
    "http://127.0.0.1:22/", "https://user@mms.twiliocdn.com/x",
])
def test_redirects_anywhere_else_are_refused(location: str) -> None:
    with pytest.raises(UrlNotAllowed):
        check_redirect(check(f"https://api.twilio.com{PATH}"), location, ALLOWED)


def test_credentials_go_only_to_the_media_urls_own_origin() -> None:
    media = check(f"https://api.twilio.com{PATH}")
    assert same_origin(media, httpx.URL("https://api.twilio.com:443/cdn/x"))
    assert not same_origin(media, httpx.URL("https://mms.twiliocdn.com/x"))
    assert not same_origin(media, httpx.URL("http://api.twilio.com/x"))


def test_the_allow_list_takes_hosts_not_urls() -> None:
    with pytest.raises(ValueError, match="MEDIA_ALLOWED_HOSTS"):
        AllowList.parse("https://api.twilio.com/path")
    assert str(AllowList.parse(" api.twilio.com ,, localhost:8090 ")) == (
        "api.twilio.com,localhost:8090")
