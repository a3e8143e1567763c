"""The cluster surface closed: a local:N cluster speaks TLS with credentials made for the run, so
another local process cannot attach (and run code in ours, or read the token); a remote cluster
is never sent the token unless the user says so."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from app.commands.cluster import spec_for  # noqa: E402
from app.core.datasets import DatasetSpec  # noqa: E402
from pools.cluster import open_client  # noqa: E402


def test_a_local_cluster_refuses_a_process_without_its_credentials():
    from distributed import Client

    client, close = open_client("local:1")
    try:
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        assert client.submit(lambda x: x + 1, 1).result(timeout=60) == 2  # ours works
        for intruder in (address.replace("tls://", "tcp://"), address):  # plain, or TLS without the run's keys
            with pytest.raises(Exception):  # noqa: B017 - Dask says it in several ways; none connects
                Client(intruder, timeout=3)
        # no dashboard or info pages (Dask's HTTP server serves no route, on a port not known in advance)
        import urllib.error
        import urllib.request

        port = client.scheduler_info().get("services", {}).get("dashboard")
        assert port != 8787
        for path in ("/info/main/workers.html", "/json/identity.json", "/health", "/metrics"):
            with pytest.raises(urllib.error.HTTPError) as got:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
            assert got.value.code == 404
    finally:
        close()


def test_the_token_goes_to_a_remote_cluster_only_when_asked():
    spec = DatasetSpec("t/repo", token="hf_secret_value")
    assert spec_for("tcp://10.0.0.5:8786", spec, send_token=False).token is None
    assert spec_for("tls://10.0.0.5:8786", spec, send_token=True).token == "hf_secret_value"
    assert spec_for("local:2", spec, send_token=False).token == "hf_secret_value"  # our own processes, over TLS
