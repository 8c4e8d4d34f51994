"""Hostile request heads, query strings and JSON bodies: each gets a clear 4xx, the daemon
keeps answering, and nothing is created.

Where dockerd's answer differs, the test says so; none of these crash or hang either daemon.
"""

import json
import urllib.parse

import pytest

from hostile_client import api, message, raw, send_and_read

JSON = {"Content-Type": "application/json"}


def alive(daemon):
    status, _, body = api(daemon, "GET", "/_ping")
    return status == 200 and body == b"OK"


def no_containers(daemon):
    status, _, body = api(daemon, "GET", "/containers/json?all=1")
    return status == 200 and json.loads(body) == []


def q(obj):
    return urllib.parse.quote(json.dumps(obj), safe="")


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b'{"Image":"x","Labels":' + b'{"a":' * 1000 + b'"1"' + b"}" * 1000 + b"}",
    b'{"Image":"x","Cmd":' + b"[" * 50_000,
], ids=["arrays-100k", "objects-100k", "nested-labels", "unclosed-50k"])
def test_deeply_nested_json_is_refused_without_recursion(daemon, outside_unchanged, body):
    status, _, out = api(daemon, "POST", "/containers/create", body, headers=JSON)
    assert status == 400, (status, out[:300])
    assert "recursion limit exceeded" in message(out)
    assert alive(daemon) and no_containers(daemon)


def test_deeply_nested_filters_are_refused(daemon, outside_unchanged):
    # 5000 deep fits in a URI (the http crate refuses one over 64 KiB).
    deep = "%5B" * 5_000 + "%5D" * 5_000
    status, _, out = api(daemon, "GET", f"/containers/json?filters={deep}")
    assert status == 400 and "invalid filter" in message(out), (status, out[:200])
    assert alive(daemon)


def test_body_over_the_json_limit_is_refused(daemon, outside_unchanged):
    body = b'{"Image":"x","Env":["A=' + b"a" * (9 << 20) + b'"]}'
    status, _, out = api(daemon, "POST", "/containers/create", body, headers=JSON, timeout=120)
    assert status == 400 and "length limit exceeded" in message(out), (status, out[:200])
    assert alive(daemon) and no_containers(daemon)


def test_chunked_body_over_the_json_limit_is_refused(daemon, outside_unchanged):
    chunks = [b'{"Image":"x","Env":["A='] + [b"a" * (1 << 20)] * 9 + [b'"]}']
    status, _, out = api(daemon, "POST", "/containers/create", iter(chunks), headers=JSON,
                         timeout=120)
    assert status == 400 and "length limit exceeded" in message(out), (status, out[:200])
    assert alive(daemon)


@pytest.mark.parametrize("request_bytes", [
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * (1 << 20)
    + b"\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n",
    b"GET /_ping?" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
], ids=["one-1MiB-header", "2000-headers", "1MiB-uri"])
def test_oversized_head_is_refused_with_431(daemon, outside_unchanged, request_bytes):
    # hyper's limit on a request head (dockerd's Go server answers 431 too, past 1 MiB).
    out, _ = send_and_read(daemon, request_bytes)
    assert out.startswith(b"HTTP/1.1 431 "), out[:200]
    assert alive(daemon)


@pytest.mark.parametrize("version,status,words", [
    ("v0.1", 400, "client version 0.1 is too old"),
    ("v1.12", 400, "client version 1.12 is too old"),
    # dockerd compares any digits-and-dots version as Go's versions.Compare does.
    ("v999", 400, "client version 999 is too new. Maximum supported API version is 1.44"),
    ("v1.2.3", 400, "client version 1.2.3 is too old. Minimum supported API version is"),
    ("v1.", 400, "client version 1. is too old"),
    ("v99999999999999999999.1", 400, "client version 99999999999999999999.1 is too new"),
    ("v1.44.0", 400, 'invalid API version "1.44.0"'),
    # Not a version (dockerd's route is `/v{version:[0-9.]+}`): an unknown path.
    ("vabc", 501, "/vabc/_ping"),
])
def test_bad_api_version_is_refused(daemon, outside_unchanged, version, status, words):
    got, headers, out = api(daemon, "GET", f"/{version}/_ping")
    assert got == status, (got, out)
    text = message(out) if "json" in headers.get("content-type", "") else out.decode()
    assert words in text, text
    assert version.removeprefix("v") in text, text


@pytest.mark.parametrize("query,words", [
    ("filters=%ZZ", "invalid filter"),
    ("filters=%7B", "invalid filter"),
    ("filters=%5B1%5D", "not a JSON object"),
    ("filters=" + q({"nosuch": ["x"]}), "invalid filter 'nosuch'"),
    ("filters=" + q({"label": 5}), "invalid filter 'label'"),
    ("limit=abc", "invalid value for limit"),
    ("limit=99999999999999999999", "invalid value for limit"),
], ids=["bad-escape", "unclosed", "array", "unknown-name", "number", "limit-word",
        "limit-overflow"])
def test_bad_query_string_is_refused(daemon, outside_unchanged, query, words):
    status, _, out = api(daemon, "GET", f"/containers/json?{query}")
    assert status == 400 and words in message(out), (status, out[:200])


def test_stray_separators_and_bad_utf8_in_a_query_are_harmless(daemon, outside_unchanged):
    for query in ["a&&&=&=", "all=%ff%fe", "=&=x&&", "all"]:
        status, _, out = api(daemon, "GET", f"/containers/json?{query}")
        assert status == 200 and json.loads(out) == [], (query, status, out[:200])


@pytest.mark.parametrize("until", ["102--1#-4:΄Ϯ:΄Ϯ", "2020-01-01ΏΏΏ", "x" * 10_000, "9" * 400])
def test_bad_until_filter_is_refused(daemon, outside_unchanged, until):
    # The first once panicked in the handler (a zone split inside a multi-byte character).
    status, _, out = api(daemon, "GET", "/images/json?filters=" + q({"until": [until]}))
    assert status == 400, (status, out[:200])
    assert alive(daemon)


def test_reference_glob_is_linear(daemon, outside_unchanged, busybox_tar):
    # A backtracking glob took exponential time on this pattern (found by fuzz/).
    status, _, out = api(daemon, "POST", "/images/create?fromSrc=-&repo=hostile-bodies-glob&tag=t",
                         busybox_tar.read_bytes(), timeout=120)
    assert status == 200, out[:200]
    try:
        for pattern in ["*" * 5000 + "x", "*a" * 2000 + "c", "*/" * 1000]:
            status, _, out = api(daemon, "GET", "/images/json?filters="
                                 + q({"reference": [pattern]}), timeout=30)
            assert status == 200 and json.loads(out) == [], (status, out[:200])
        status, _, out = api(daemon, "GET", "/images/json?filters="
                             + q({"reference": ["hostile-*-glob:*"]}))
        assert [i["RepoTags"] for i in json.loads(out)] == [["hostile-bodies-glob:t"]]
    finally:
        api(daemon, "DELETE", "/images/hostile-bodies-glob:t?force=1")


@pytest.mark.parametrize("body,status,words", [
    (b'{"Image":"\xff\xfe"}', 400, "invalid JSON"),
    (b'\xef\xbb\xbf{"Image":"x"}', 400, "invalid JSON"),
    (b'{"Image":"\\ud800"}', 400, "invalid JSON"),
    (b"{Image", 400, "invalid JSON"),
    (b"", 400, "Config cannot be empty in order to create a container"),
    (b"   \n", 400, "Config cannot be empty in order to create a container"),
    # Go's words from here on (wharf_api::wire_keys::typed), naming the field that is wrong.
    (b"null", 400, "json: cannot unmarshal null into Go value of type ContainerConfigWrapper"),
    (b"[]", 400, "json: cannot unmarshal array into Go value of type ContainerConfigWrapper"),
    (b'"Image"', 400, "json: cannot unmarshal string into Go value of type ContainerConfigWrapper"),
    (b'{"Image":"x"} {"Image":"y"}', 400, "trailing characters"),
    (b'{"Image":5}', 400,
     "json: cannot unmarshal number 5 into Go struct field ContainerConfigWrapper.Image of type string"),
    (b'{"Image":"x","Cmd":{"a":1}}', 400, "Go struct field ContainerConfigWrapper.Cmd of type"),
    (b'{"Image":"x","Env":"A=1"}', 400,
     "json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Env of type"),
    (b'{"Image":"x","HostConfig":"none"}', 400,
     "json: cannot unmarshal string into Go struct field ContainerConfigWrapper.HostConfig of type HostConfig"),
    (b'{"Image":"x","Labels":{"a":1}}', 400, "Go struct field ContainerConfigWrapper.Labels of type string"),
], ids=["bad-utf8", "bom", "lone-surrogate", "not-json", "empty", "blank", "null", "array",
        "string", "trailing", "image-int", "cmd-object", "env-string", "hostconfig-string",
        "label-int"])
def test_malformed_create_body_is_refused(daemon, outside_unchanged, body, status, words):
    got, _, out = api(daemon, "POST", "/containers/create", body, headers=JSON)
    assert got == status and words in message(out), (got, out[:300])
    assert no_containers(daemon)


def test_duplicate_keys_take_the_last_value_as_go_does(daemon, outside_unchanged):
    # encoding/json keeps the last of duplicate keys; so does serde_json.
    body = b'{"Image":"a","Image":"hostile-dup-b"}'
    status, _, out = api(daemon, "POST", "/containers/create", body, headers=JSON)
    assert status == 404 and message(out) == "No such image: hostile-dup-b:latest", out


def test_malformed_request_lines_are_refused(daemon, outside_unchanged):
    for req in [b"GET /containers/\xff\xfe/json HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Bad: \x00\r\n\r\n",
                b"GET /_ping HTTP/9.9\r\nHost: x\r\n\r\n",
                b"GET  HTTP/1.1\r\n\r\n",
                b"\r\n\r\n\r\n"]:
        out = raw(daemon, req)
        assert out == b"" or out.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 505 ")), (req, out)
    assert alive(daemon)
