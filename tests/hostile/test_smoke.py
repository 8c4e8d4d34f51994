"""The suite's plumbing works: a request answers, a malformed one is refused, nothing escapes."""

from hostile_client import api, raw


def test_ping_answers(daemon, outside_unchanged):
    status, _, body = api(daemon, "GET", "/_ping")
    assert status == 200 and body == b"OK"


def test_garbage_request_line_is_refused(daemon, outside_unchanged):
    out = raw(daemon, b"\x00\x01 not http at all\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400") or out == b"", out[:200]
