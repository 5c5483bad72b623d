"""Fuzzing the plugin over HTTP: random and hostile parameters, path traversal in static paths.

Requests are sent raw (http.client does not normalize "..") to a real TensorBoard under each
loader. Nothing may answer 5xx, every JSON route answers JSON (with "error" when 4xx), and a
static file served must be byte-for-byte a file of the package's `static/` directory.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import urllib.parse

import pytest

from support.plugin_logdirs import TAG
from support.plugin_servers import LOADERS, plugin_tensorboard
from support.static_placeholder import static_index
from tb_gradflow.plugin.static_files import STATIC_DIR

REQUESTS_PER_LOADER = 600
PREFIX = "/data/plugin/gradflow/"
JSON_ROUTES = ("runs", "graph", "history", "diagnosis", "graph_groups", "notices", "layers")

GOOD = {
    "run": ["cut", "retrace", "keras/train", "hostile/malformed", "hostile/truncated", "hostile/unknown_version"],
    "tag": [TAG, "all_bad", f"{TAG}/_graph/x"],
    "step": ["0", "1", "7", "999", "1000", "-1", "11"],
    "op": ["PyFunc", "encoder_1/MatMul", "args_0", "Mean"],
    "variable": ["encoder/kernel", "decoder/kernel", "gate/bias"],
    "group": ["encoder_1", "decoder_1", "StatefulPartitionedCall", ""],
    "columns": ["1", "3", "300", "10000", "10001", "0"],
}
HOSTILE_VALUES = [
    "", " ", "../../etc/passwd", "..\\..\\setup.py", "\x00", "%00", "%", "%zz", "%ff%fe",
    "<img src=x onerror=alert(1)>", "'; DROP TABLE runs; --", "{}", "[]", "null", "NaN", "Infinity",
    "-0", "+1", "1e309", "0x10", "1_000", "00000000000000000001", "9" * 30, "-" + "9" * 19,
    "\u0663", "\uff11", "\u202e", "\ud7ff", "\U0001f600", "a" * 5000, "/", "//", ".", "..",
    "cut/", "/cut", "CUT", "cut\n", "gradflow\t", "step=1&run=cut",
]
STATIC_ATTACKS = [
    "../plugin.py", "../../setup.py", "..%2fplugin.py", "..%2F..%2Fsetup.py", "%2e%2e/plugin.py",
    "%2e%2e%2f%2e%2e%2fsetup.py", "..%5cplugin.py", "....//....//setup.py", "/etc/passwd",
    "//etc/passwd", "%2fetc%2fpasswd", "%252e%252e%252fplugin.py", "..;/plugin.py",
    "index.js%00.png", "./index.js", ".//index.js", "a/../index.js", "~/.bashrc",
    "%c0%ae%c0%ae/plugin.py", "index.js/", "../../../../../../../../etc/passwd", ".hidden.js",
    "../__init__.py", "..", ".", "", "index.js", "INDEX.JS", "index.js?x=1", "x" * 300 + ".js",
]
RAW_PATHS = [
    PREFIX + "../../../../etc/passwd", PREFIX + "static/../plugin.py", PREFIX + "static/../../../setup.py",
    PREFIX + "%2e%2e/%2e%2e/etc/passwd", PREFIX + "index.js/../plugin.py", PREFIX + "static",
    PREFIX + "static/", PREFIX, PREFIX + "nope", PREFIX + "runs/", PREFIX + "graph/x",
]


def _quote(value: str, rng: random.Random) -> str:
    """Mostly proper percent-encoding; sometimes the raw characters that are legal on the wire."""
    if rng.random() < 0.2 and all(33 <= ord(c) < 127 and c not in "#&= " for c in value):
        return value
    return urllib.parse.quote(value, safe="")


def _value(rng: random.Random, name: str) -> str:
    roll = rng.random()
    if roll < 0.45 and name in GOOD:
        return rng.choice(GOOD[name])
    if roll < 0.85:
        return rng.choice(HOSTILE_VALUES)
    alphabet = "abc/._-%0123456789\x00\u00e9\u4e2d<>\"'"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))


def _query(rng: random.Random) -> str:
    names = list(GOOD) + ["", "x", "Run", "run[]"]
    pairs = []
    for name in GOOD:
        if rng.random() < 0.75:
            pairs.append((name, _value(rng, name)))
    for _ in range(rng.choice([0, 0, 1, 2])):  # extra and repeated parameters
        pairs.append((rng.choice(names), _value(rng, "x")))
    rng.shuffle(pairs)
    return "&".join(f"{_quote(k, rng)}={_quote(v, rng)}" for k, v in pairs)


def generate(seed: int, n: int) -> list[str]:
    """`n` request targets (path and query) for the plugin."""
    rng = random.Random(seed)
    targets = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.7:
            targets.append(f"{PREFIX}{rng.choice(JSON_ROUTES)}?{_query(rng)}")
        elif roll < 0.9:
            targets.append(f"{PREFIX}static/{rng.choice(STATIC_ATTACKS)}")
        elif roll < 0.95:
            targets.append(rng.choice(RAW_PATHS))
        else:
            targets.append(f"{PREFIX}index.js?{_query(rng)}")
    return targets


def static_files() -> set[bytes]:
    contents = set()
    for root, _, files in os.walk(STATIC_DIR):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                contents.add(f.read())
    return contents


def raw_get(host: str, port: int, target: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("load_fast", LOADERS)
def test_fuzzed_requests_never_fail_or_leak_files(load_fast):
    tb = plugin_tensorboard(load_fast)
    url = urllib.parse.urlsplit(tb.url)
    with static_index():
        allowed = static_files()
        statuses: dict[int, int] = {}
        served_static = 0
        for target in generate(seed=len(load_fast), n=REQUESTS_PER_LOADER):
            status, content_type, body = raw_get(url.hostname, url.port, target)
            statuses[status] = statuses.get(status, 0) + 1
            assert status < 500, (target, status, body[:500])
            assert b"root:x:0:0" not in body and b"def resolve(" not in body, target
            path = urllib.parse.urlsplit(target).path
            route = path[len(PREFIX):].rstrip("/") if path.startswith(PREFIX) else ""  # as TensorBoard routes it
            if route in JSON_ROUTES:
                assert content_type.startswith("application/json"), target
                value = json.loads(body)
                assert (status == 200) != ("error" in value), (target, status, value)
            elif status == 200:
                assert body in allowed, (target, body[:200])
                served_static += 1
    assert statuses.get(200, 0) > 50 and statuses.get(400, 0) > 50 and statuses.get(404, 0) > 50, statuses
    assert served_static > 0
