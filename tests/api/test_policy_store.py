"""The API with the scaler's store in a ZooKeeper that is not there: it starts and serves, and the policy
routes answer 503 with a reason (never a 500, never "no policy", which would let an autoscaled app be scaled)."""
from __future__ import annotations

import json

from orchestrator.services.api.server import state_from_config
from tests.api.conftest import ApiFiles, start_api
from tests.support.zk_ensemble import free_ports


def test_policy_routes_answer_503_while_zookeeper_is_away(api_files: ApiFiles, fake_marathon, tmp_path):
    (tmp_path / "zk-auth").write_text("digest:orchestrator-api:pw\n")
    port = free_ports(1)[0]  # nothing listens there
    api_files.write(marathon={"urls": fake_marathon.urls}, zookeeper={"servers": [f"127.0.0.1:{port}"]},
                    autoscaler={"znode": "/orchestrator/marathon-scaler", "credentials_file": str(tmp_path / "zk-auth")})
    state = state_from_config(str(api_files.config), reload_every=0)
    running = start_api(state)
    try:
        with running.client("operator") as http:
            assert http.get("/readyz").status_code == 200
            for method, path, body in (("PATCH", "/api/v1/marathon/apps/shop/web/policy", {"paused": True}),
                                       ("POST", "/api/v1/marathon/apps/shop/web/scale", {"instances": 3}),
                                       ("GET", "/api/v1/marathon/apps", None)):
                answer = http.request(method, path, content=json.dumps(body) if body else None,
                                      headers={"Content-Type": "application/json"})
                assert answer.status_code == 503, (method, path, answer.text)
                assert "ZooKeeper session to the scaler's store is not connected" in answer.json()["detail"]
        assert not [r for r in fake_marathon.requests if r["method"] == "PUT"]  # nothing was scaled
    finally:
        running.stop()
        state.policies._zk.stop()  # type: ignore[attr-defined]
        state.policies._zk.close()  # type: ignore[attr-defined]


def test_a_bad_credentials_file_is_one_line_naming_the_key(api_files: ApiFiles, tmp_path):
    import pytest

    from orchestrator.errors import InputError

    (tmp_path / "zk-auth").write_text("orchestrator-api-without-scheme\n")
    api_files.write(zookeeper={"servers": ["127.0.0.1:1"]},
                    autoscaler={"znode": "/s", "credentials_file": str(tmp_path / "zk-auth")})
    with pytest.raises(InputError, match=r"autoscaler.credentials_file .*zk-auth: expected 'digest:user:password'"):
        state_from_config(str(api_files.config), reload_every=0)
    (tmp_path / "zk-auth").unlink()
    with pytest.raises(InputError, match=r"autoscaler.credentials_file .*zk-auth: No such file"):
        state_from_config(str(api_files.config), reload_every=0)
