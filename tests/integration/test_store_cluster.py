"""RedisStore in cluster mode: three masters on loopback, built with valkey-cli --cluster create."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.core import Settings
from lib.sessions import RedisStore, open_store, valkey_binary
from tests.support.ci import require
from tests.support.redis_fixtures import ValkeyProcess, free_port, start_valkey

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[list[ValkeyProcess]]:
    binary = valkey_binary()
    require(binary is not None, "valkey-server not found")
    cli = Path(binary).with_name("valkey-cli")
    require(cli.exists(), f"valkey-cli not found next to {binary}")
    directory = tmp_path_factory.mktemp("cluster")
    nodes = []
    try:
        for n in range(3):
            # An explicit bus port: the default (port + 10000) fails for ports above 55535.
            nodes.append(start_valkey(directory / str(n), "--cluster-enabled", "yes", "--cluster-port",
                                      str(free_port()), "--cluster-config-file", "nodes.conf",
                                      "--cluster-node-timeout", "3000"))
        subprocess.run([str(cli), "--cluster", "create", *[f"127.0.0.1:{node.port}" for node in nodes],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while not all("cluster_state:ok" in node.client().execute_command("CLUSTER", "INFO") for node in nodes):
            assert time.monotonic() < deadline, "cluster did not reach cluster_state:ok"
            time.sleep(0.2)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def test_cluster_store_keeps_a_session_in_one_slot(cluster):
    prefix = f"ctest-{uuid.uuid4().hex[:8]}"
    handle = open_store(Settings(redis_url=f"redis://127.0.0.1:{cluster[0].port}", redis_cluster=True,
                                 key_prefix=prefix))
    store = handle.store
    assert handle.kind == "cluster" and isinstance(store, RedisStore) and store.cluster

    sessions = [f"s{n}" for n in range(12)]  # enough ids to land on all three masters
    for sid in sessions:
        assert store.append(sid, {"role": "user", "content": f"hello {sid}"},
                            {"role": "assistant", "content": "hi"}) == 2
        store.append_turn(sid, {"turn": 1})
        store.set_meta(sid, system_prompt="sys")
    for sid in sessions:
        assert [m["content"] for m in store.get_history(sid)] == [f"hello {sid}", "hi"]
        assert store.get_turns(sid) == [{"turn": 1}]
        assert store.get_meta(sid)["system_prompt"] == "sys"
        slots = {store.client.keyslot(key) for key in store.keys(sid)}
        assert len(slots) == 1  # the {S} hash tag: MULTI/EXEC can cover the session
        assert all(store.client.ttl(key) > 0 for key in store.keys(sid) if store.client.exists(key))

    masters = {store.client.get_node_from_key(store.key(sid, "messages")).port for sid in sessions}
    assert len(masters) == 3
    assert {row.id for row in store.list_sessions()} == set(sessions)
    store.clear_history("s0")
    assert store.get_history("s0") == [] and "s0" not in {row.id for row in store.list_sessions()}
