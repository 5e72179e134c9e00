"""Safe to expose, end to end against the engine binary: listener access rules from a config
file in the published engine's shape (tests/access/config.yaml) with the auth function and
the registration hook written in Python, seen from this package's workers and from the
published Node client passing ``headers``; and TLS: a channel and an HTTP download over
``wss://`` and ``https://`` for this package and for the published Python and Node clients.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import urllib.request

import pytest

import iii
from helpers import REPO, StoppableEngine, harness
from iii.utils import http

ACCESS = REPO / "tests" / "access"
RESTRICTED = ACCESS / "restricted.mjs"


# ---------------------------------------------------------------- access rules

def authenticate(data):
    """The listener's auth function: token `good` is granted, anything else refused."""
    if data["headers"].get("authorization") == "Bearer good":
        return {
            "allowed_functions": ["secret::granted"],
            "forbidden_functions": ["api::admin"],
            "function_registration_prefix": "tenant",
            "context": {"user": "u1"},
        }
    raise PermissionError(f"bad token from {data['ip_address']}")


def on_function(data):
    """The registration hook: `evil` is denied, `old` is renamed `new`, the rest allowed."""
    if data["function_id"] == "evil":
        raise PermissionError("no evil here")
    if data["function_id"] == "old":
        return {"function_id": "new"}
    return {}


@pytest.fixture
def guarded(tmp_path):
    """An engine with the access listeners, and a trusted worker (main listener) serving the
    auth function, the hook and the functions the restricted workers call."""
    port = harness.free_port()
    config = ACCESS / "config.yaml"
    with StoppableEngine(tmp_path, "--config", str(config), env={"III_ACCESS_PORT": str(port)}) as engine:
        assert engine.extra_urls == [f"ws://127.0.0.1:{port}"], engine.extra_urls
        trusted = iii.register_worker(engine.url)
        trusted.register_function("access::auth", authenticate)
        trusted.register_function("access::on-function", on_function)
        for function_id in ("api::echo", "api::admin", "secret::granted", "secret::hidden"):
            trusted.register_function(function_id, lambda data, f=function_id: {"served": f, "data": data})
        trusted.ready()
        engine.trusted = trusted
        engine.workdir = tmp_path
        try:
            yield engine
        finally:
            trusted.shutdown()


def call(worker, function_id, payload=None):
    return worker.trigger({"function_id": function_id, "payload": payload or {}})


def check_tenant_functions(trusted):
    """What the restricted worker registered, as the trusted side sees it: `echo` under the
    prefix (and called without it), `old` renamed `new` by the hook, `evil` denied."""
    assert call(trusted, "tenant::echo", {"n": 1})["echoed"]["n"] == 1
    assert call(trusted, "tenant::new") == {"renamed": True}
    for missing in ("echo", "tenant::old", "tenant::evil"):
        with pytest.raises(iii.InvocationError) as info:
            call(trusted, missing)
        assert info.value.code == "function_not_found", missing


@pytest.mark.timeout(60)
def test_a_python_auth_function_admits_by_token_and_calls_resolve_as_documented(guarded):
    url = guarded.extra_urls[0]
    bad = iii.register_worker(url, {"headers": {"Authorization": "Bearer bad"}, "connect_timeout_ms": 1500})
    try:
        with pytest.raises(iii.ConnectionError) as refused:
            call(bad, "api::echo")
        assert "401" in str(refused.value), str(refused.value)
    finally:
        bad.shutdown()

    restricted = iii.register_worker(url, {"headers": {"Authorization": "Bearer good"}})
    try:
        restricted.register_function("echo", lambda data: {"echoed": data})
        restricted.register_function("old", lambda _data: {"renamed": True})
        restricted.register_function("evil", lambda _data: {"evil": True})
        restricted.ready()
        assert call(restricted, "api::echo", {"x": 1})["served"] == "api::echo"
        assert call(restricted, "secret::granted")["served"] == "secret::granted"
        with pytest.raises(iii.IIIForbiddenError) as forbidden:
            call(restricted, "api::admin")
        assert forbidden.value.code == "FORBIDDEN"
        assert "remove from rbac.forbidden_functions" in str(forbidden.value)
        with pytest.raises(iii.IIIForbiddenError) as hidden:
            call(restricted, "secret::hidden")
        assert "add to rbac.expose_functions" in str(hidden.value)
        # Infrastructure stays callable: a channel through the guarded listener.
        channel = restricted.create_channel()
        channel.writer.write(b"through the guarded listener")
        channel.writer.close()
        assert channel.reader.read_all() == b"through the guarded listener"
        check_tenant_functions(guarded.trusted)
    finally:
        restricted.shutdown()


def run_restricted(guarded, request, token: str, expect_refusal: bool = False) -> tuple[subprocess.Popen, dict]:
    """Starts tests/access/restricted.mjs on the published Node client; its RESULT."""
    env = {
        **os.environ,
        "III_URL": guarded.extra_urls[0],
        "III_ACCESS_TOKEN": token,
        "III_INTEROP_CACHE": str(harness.CACHE),
        "III_ACCESS_EXPECT_REFUSAL": "1" if expect_refusal else "0",
    }
    stderr_path = guarded.workdir / f"restricted-{token}.stderr"
    harness._logs_of(request.node).append((f"restricted.mjs ({token}) stderr", stderr_path))
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [harness.NODE, str(RESTRICTED)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env
        )
    line = proc.stdout.readline().decode()
    assert line.startswith("RESULT "), f"{line!r}\n{harness.tail(stderr_path)}"
    return proc, json.loads(line[len("RESULT "):])


@pytest.mark.timeout(90)
def test_the_published_node_client_passes_headers_through_the_same_rules(guarded, request, node_client):
    refused_proc, refused = run_restricted(guarded, request, "bad", expect_refusal=True)
    refused_proc.wait(10)
    assert "code" in refused["refused"] and "result" not in refused["refused"], refused
    assert "upgrade refused" in guarded.log.read_text() and "401" in guarded.log.read_text()

    proc, outcomes = run_restricted(guarded, request, "good")
    try:
        assert outcomes["exposed"]["result"]["served"] == "api::echo", outcomes
        assert outcomes["granted"]["result"]["served"] == "secret::granted", outcomes
        assert "remove from rbac.forbidden_functions" in outcomes["forbidden"]["message"], outcomes
        assert "add to rbac.expose_functions" in outcomes["hidden"]["message"], outcomes
        assert proc.stdout.readline().decode().strip() == "READY"
        check_tenant_functions(guarded.trusted)
    finally:
        proc.stdin.close()
        proc.wait(10)


# ---------------------------------------------------------------- TLS

@pytest.fixture
def tls_engine(tmp_path):
    """An engine serving wss:// and https:// with a certificate from a fresh test CA."""
    certs = tmp_path / "certs"
    subprocess.run(["bash", str(REPO / "scripts" / "make-test-certs.sh"), str(certs)], check=True)
    args = ("--tls-cert", str(certs / "leaf.pem"), "--tls-key", str(certs / "leaf.key"))
    with StoppableEngine(tmp_path, *args) as engine:
        assert engine.url.startswith("wss://") and engine.http_url.startswith("https://")
        engine.ca = certs / "ca.pem"
        engine.workdir = tmp_path
        yield engine


def https_get(engine, path: str) -> bytes:
    context = ssl.create_default_context(cafile=str(engine.ca))
    with urllib.request.urlopen(f"{engine.http_url}{path}", timeout=30, context=context) as response:
        assert response.status == 200
        return response.read()


@pytest.mark.timeout(60)
def test_a_channel_and_a_download_over_tls_with_this_package(tls_engine):
    owner = iii.register_worker(tls_engine.url, {"ca_file": str(tls_engine.ca)})
    caller = iii.register_worker(tls_engine.url, {"ca_file": str(tls_engine.ca)})
    payload = os.urandom(3 * 1024 * 1024 + 5)
    try:
        owner.register_function("tls::digest", lambda data: hashlib.sha256(data["reader"].read_all()).hexdigest())

        @http
        async def download(_request, response):
            await response.status(200)
            await response.headers({"content-type": "application/octet-stream"})
            await response.writer.write(payload)

        owner.register_function("tls::download", download)
        owner.register_trigger({
            "type": "http", "function_id": "tls::download",
            "config": {"api_path": "/download", "http_method": "GET"},
        })
        owner.ready()
        channel = caller.create_channel()
        channel.writer.write(payload)
        channel.writer.close()
        digest = call(caller, "tls::digest", {"reader": channel.reader_ref.model_dump()})
        assert digest == hashlib.sha256(payload).hexdigest()
        assert https_get(tls_engine, "/download") == payload
    finally:
        owner.shutdown()
        caller.shutdown()


@pytest.mark.timeout(180)
def test_the_published_clients_stream_and_download_over_tls(tls_engine, request, node_client):
    """The published Python client serves the guide's files::process and download handlers,
    the published Node client drives 4 MiB into it: through wss://, trusting the test CA the
    way each runtime does (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS)."""
    trust = {"SSL_CERT_FILE": str(tls_engine.ca), "NODE_EXTRA_CA_CERTS": str(tls_engine.ca)}
    files = tls_engine.workdir / "files"
    files.mkdir()
    data = os.urandom(2 * 1024 * 1024)
    (files / "report.bin").write_bytes(data)
    server = harness.ServingWorker(
        "python", ["files", "download"], tls_engine, request, env={**trust, "III_INTEROP_FILES_DIR": str(files)}
    )
    try:
        size = 4 * 1024 * 1024
        out = harness.run_driver(tls_engine, request, "node", "files", "--size", str(size), timeout=120, env=trust)
        expected = hashlib.sha256(hashlib.shake_256(f"iii-interop:{size}".encode()).digest(size)).hexdigest()
        assert out["result"]["bytes"] == size and out["result"]["sha256"] == expected, out
        assert out["result"]["runtime"] == "python"
        assert https_get(tls_engine, "/files/report.bin") == data
    finally:
        server.stop()
