"""The one Marathon client against the fake Marathon (real HTTP on loopback, simulated clock)."""
from __future__ import annotations

import httpx
import pytest

from orchestrator.clients.marathon import (
    App,
    AppNotFound,
    DeploymentLocked,
    MarathonClient,
    MarathonError,
    MarathonUnreachable,
    app_path,
    load_basic_auth,
    normalize_app_id,
)
from orchestrator.errors import ExitCode, InputError
from orchestrator.fakes.marathon import LOCKED_MESSAGE, FakeMarathon

WEB = {"id": "/shop/web", "instances": 3, "cmd": "python3 -m http.server $PORT0",
       "healthChecks": [{"protocol": "HTTP", "path": "/health"}]}


def test_scale_is_a_put_and_converges_step_by_step(fake_marathon: FakeMarathon, marathon_client: MarathonClient):
    fake_marathon.add_app(WEB)
    deployment = marathon_client.scale("shop/web/", 5)
    put = fake_marathon.requests[-1]
    assert (put["method"], put["path"], put["body"]) == ("PUT", "/v2/apps/shop/web", '{"instances": 5}')
    assert [d.id for d in marathon_client.deployments()] == [deployment]
    app = marathon_client.get_app("/shop/web")
    assert (app.instances, app.tasksRunning, app.deploying) == (5, 3, True)
    fake_marathon.advance(5)
    assert marathon_client.get_app("/shop/web").tasksRunning == 4
    fake_marathon.advance(5)
    assert marathon_client.get_app("/shop/web").tasksRunning == 5
    marathon_client.wait_for_deployment(deployment, timeout=60, poll=5)  # new tasks turn healthy, then it ends
    app = marathon_client.get_app("/shop/web")
    assert (app.tasksHealthy, app.ready_count(), app.deploying) == (5, 5, False)


def test_locked_app_gets_the_real_409_and_is_never_forced(fake_marathon, marathon_client):
    fake_marathon.add_app(WEB)
    first = marathon_client.scale("/shop/web", 6)
    with pytest.raises(DeploymentLocked) as locked:
        marathon_client.scale("/shop/web", 2)
    assert locked.value.deployment_ids == [first]
    assert locked.value.marathon_message == LOCKED_MESSAGE
    assert locked.value.exit_code == ExitCode.REFUSED
    assert all("force" not in r["query"] for r in fake_marathon.requests)
    assert fake_marathon.instances("/shop/web") == 6


def test_wait_locked_waits_for_the_blocking_deployment_then_applies(fake_marathon, marathon_client):
    fake_marathon.add_app(WEB)
    marathon_client.scale("/shop/web", 4)
    second = marathon_client.scale("/shop/web", 2, wait_locked=120)
    assert second and fake_marathon.instances("/shop/web") == 2
    assert all("force" not in r["query"] for r in fake_marathon.requests)


def test_force_only_when_asked_and_it_cancels_the_running_deployment(fake_marathon, marathon_client):
    fake_marathon.add_app(WEB)
    first = marathon_client.scale("/shop/web", 6)
    second = marathon_client.scale("/shop/web", 2, force=True)
    assert fake_marathon.requests[-1]["query"] == {"force": "true"}
    assert [d.id for d in marathon_client.deployments()] == [second] != [first]


def test_app_ids_with_groups_are_normalised_and_validated():
    assert normalize_app_id("shop/eu.web/") == "/shop/eu.web"
    assert app_path("/a/b/c") == "/v2/apps/a/b/c"
    for bad in ("", "/", "/Shop", "/a/-b", "/a b"):
        with pytest.raises(InputError):
            normalize_app_id(bad)


def test_missing_app_is_a_typed_error(marathon_client):
    with pytest.raises(AppNotFound):
        marathon_client.get_app("/nope")
    assert marathon_client.get_app_raw("/nope") is None


def test_standby_proxies_to_the_leader(fake_marathon: FakeMarathon):
    fake_marathon.add_app(WEB)
    with httpx.Client() as http:
        response = http.get(fake_marathon.urls[2] + "/v2/apps/shop/web")
    assert response.status_code == 200
    assert response.headers["X-Marathon-Via"].endswith(fake_marathon.urls[2])
    assert response.headers["X-Marathon-Leader"] == fake_marathon.urls[0]
    assert [r["instance"] for r in list(fake_marathon.requests)[-2:]] == [2, 0]


def test_leader_failover_and_no_leader(fake_marathon: FakeMarathon, marathon_client: MarathonClient):
    fake_marathon.add_app(WEB)
    assert marathon_client.leader() == fake_marathon.urls[0].split("//")[1]
    fake_marathon.stop_instance(0)       # the leader dies: nobody leads until an election
    assert marathon_client.leader() is None
    with pytest.raises(MarathonUnreachable):
        marathon_client.scale("/shop/web", 4)  # 502 from both standbys, retried, then a typed error
    assert fake_marathon.instances("/shop/web") == 3
    fake_marathon.fail_over(to=1)
    assert marathon_client.leader() == fake_marathon.urls[1].split("//")[1]
    marathon_client.scale("/shop/web", 4)
    assert fake_marathon.instances("/shop/web") == 4


def test_every_url_down_is_unreachable_with_exit_5():
    client = MarathonClient(["http://127.0.0.1:9", "http://127.0.0.1:1"], retries=1, backoff=0, timeout=1)
    with pytest.raises(MarathonUnreachable) as err:
        client.list_apps()
    assert err.value.exit_code == ExitCode.UNREACHABLE


def test_basic_auth_from_a_file(tmp_path):
    secret = tmp_path / "credentials"
    secret.write_text("scaler:s3cr3t-pw\n")
    with FakeMarathon(credentials=("scaler", "s3cr3t-pw")) as fake:
        with MarathonClient(fake.urls) as anonymous, pytest.raises(MarathonError) as refused:
            anonymous.list_apps()
        assert refused.value.status == 401 and refused.value.exit_code == ExitCode.INPUT
        with MarathonClient(fake.urls, auth=load_basic_auth(secret)) as client:
            assert client.list_apps() == []
    secret.write_text("no-colon-s3cr3t-pw")
    with pytest.raises(InputError) as bad:
        load_basic_auth(secret)
    assert str(secret) in str(bad.value) and "s3cr3t" not in str(bad.value)


def test_models_accept_unknown_missing_and_stringly_fields():
    old = {"id": "/legacy", "instances": "2", "cpus": "0.3", "mem": "9", "ports": [0], "someFutureField": {"x": 1},
           "tasks": [{"id": "legacy.1234", "healthCheckResults": [{"alive": True, "taskId": "legacy.1234"}]}]}
    app = App.model_validate(old)
    assert (app.instances, app.cpus, app.tasks[0].state, app.tasks[0].healthy) == (2, 0.3, "TASK_RUNNING", True)
    assert app.model_dump()["someFutureField"] == {"x": 1}
    assert App.model_validate({"id": "/bare"}).tasks == []


def test_ready_count_ignores_old_version_and_unhealthy_tasks(fake_marathon, marathon_client):
    fake_marathon.add_app(WEB)
    marathon_client.restart("/shop/web")
    fake_marathon.advance(5)  # one new-version task started, not yet healthy; 3 old ones still run
    app = marathon_client.get_app("/shop/web")
    assert app.tasksRunning == 4
    assert app.ready_count() == 0  # old version tasks are not capacity of the current version
    fake_marathon.advance(200)
    app = marathon_client.get_app("/shop/web")
    assert (app.tasksRunning, app.ready_count(), app.deploying) == (3, 3, False)
    fake_marathon.overload(60)
    assert marathon_client.get_app("/shop/web").ready_count() == 0


def test_events_stream_reports_deployment_success(fake_marathon_realtime: FakeMarathon):
    fake_marathon_realtime.add_app({"id": "/ev", "instances": 1})
    with MarathonClient(fake_marathon_realtime.urls[1:]) as client:  # a standby: 307 to the leader
        deployment = client.scale("/ev", 2)
        seen = []
        for event in client.events(event_types=["deployment_success"], max_events=1, read_timeout=10):
            seen.append(event)
    assert seen[0]["eventType"] == "deployment_success" and seen[0]["id"] == deployment
