import json

import pytest

from graysteps.errors import InvalidInput
from graysteps.model.cookie import (
    CookieSettings, InvalidToken, _b64, _unb64, gray_cookie, load_cookie_key, sign_token, verify_gray_token,
)

KEY = b"k" * 32


def test_plain_cookie_has_the_seed_value_and_safe_defaults():
    assert gray_cookie("t1", True, CookieSettings()) == "tenantGray=1; Path=/; HttpOnly; SameSite=Lax"
    assert gray_cookie("t1", False, CookieSettings()) == "tenantGray=0; Path=/; HttpOnly; SameSite=Lax"


def test_optional_attributes():
    settings = CookieSettings(domain="example.com", max_age=3600, secure=True, same_site="strict")
    assert gray_cookie("t1", True, settings) == (
        "tenantGray=1; Path=/; Domain=example.com; Max-Age=3600; Secure; HttpOnly; SameSite=Strict"
    )


@pytest.mark.parametrize("kwargs, message", [
    ({"domain": "example.com; Path=/evil"}, "invalid cookie domain"),
    ({"name": "tenant Gray"}, "invalid cookie name"),
    ({"path": "/a;b"}, "invalid cookie path"),
    ({"max_age": -1}, "invalid cookie max-age"),
    ({"same_site": "sometimes"}, "invalid SameSite"),
    ({"same_site": "None"}, "SameSite=None needs --secure"),
])
def test_attribute_injection_and_bad_attributes_are_refused(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        CookieSettings(**kwargs)


def test_signed_cookie_verifies_with_the_key():
    cookie = gray_cookie("acme", True, CookieSettings(max_age=600), key=KEY, now=1000)
    name, value = cookie.split(";")[0].split("=", 1)
    assert name == "tenantGray"
    claims = verify_gray_token(value, KEY, now=1500)
    assert (claims["sub"], claims["gray"], claims["exp"]) == ("acme", True, 1600)


def test_a_client_cannot_forge_gray():
    value = gray_cookie("acme", False, CookieSettings(), key=KEY).split(";")[0].split("=", 1)[1]
    header, payload, signature = value.split(".")
    claims = json.loads(_unb64(payload))
    forged_payload = _b64(json.dumps({**claims, "gray": True}).encode())
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_gray_token(f"{header}.{forged_payload}.{signature}", KEY)
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_gray_token(sign_token({**claims, "gray": True}, b"x" * 32), KEY)  # signed with another key
    for junk in ("1", "", "a.b.c", "..", value + "x"):
        with pytest.raises(InvalidToken):
            verify_gray_token(junk, KEY)


def test_an_expired_signed_cookie_is_refused():
    value = gray_cookie("acme", True, CookieSettings(max_age=60), key=KEY, now=1000).split(";")[0].split("=", 1)[1]
    with pytest.raises(InvalidToken, match="expired"):
        verify_gray_token(value, KEY, now=1060)


def test_the_key_comes_from_a_file_or_the_environment_and_must_be_long(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(b"f" * 40 + b"\n")
    assert load_cookie_key(str(key_file), env={}) == b"f" * 40
    assert load_cookie_key(None, env={"GRAYSTEPS_COOKIE_KEY_FILE": str(key_file)}) == b"f" * 40
    assert load_cookie_key(None, env={"GRAYSTEPS_COOKIE_KEY": "e" * 32}) == b"e" * 32
    with pytest.raises(InvalidInput, match="is 5 bytes; use at least 32"):
        load_cookie_key(None, env={"GRAYSTEPS_COOKIE_KEY": "short"})
    with pytest.raises(InvalidInput, match="signed cookies need a key"):
        load_cookie_key(None, env={})
