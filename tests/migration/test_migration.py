"""`orchestrator migrate` end to end: real ZooKeeper ensembles and sync engine, fake Mesos and Marathon
servers, moto S3. Each command runs as a fresh tool invocation reading the state file, as after a restart."""
from __future__ import annotations

import json

import yaml

from tests.migration.helpers import migrate, state, write_config


def test_six_phases_with_gates_refusals_rollback_and_archive(world, capsys):
    w = world
    assert migrate(w, "start", "--config", write_config(w, hook=str(w.hook))) == 0
    assert state(w)["phase"] == 0 and state(w)["baseline_task_failures"] == 0

    # Phase 1: the hook "deploys" B but the sync engine is not running: the gate refuses.
    assert migrate(w, "advance") == 1
    out = capsys.readouterr().out
    assert "FAIL  sync engine" in out and state(w)["phase"] == 0 and state(w)["pending"]["phase"] == 1
    w.engine.run(w.zk.a.connect_string, w.zk.b.connect_string)
    assert migrate(w, "advance") == 0
    out = capsys.readouterr().out
    assert "PASS  zookeeper B quorum" in out and "PASS  trees identical A→B" in out and state(w)["phase"] == 1
    assert w.calls.read_text().splitlines() == ["1 apply 1"]  # the hook ran once, not again on the retry

    # Phase 2: masters on B must answer, while the leader stays on A.
    assert migrate(w, "advance") == 1
    assert "FAIL  mesos masters B healthy" in capsys.readouterr().out
    w.config["masters_b"] = [w.b_master]
    s = state(w)
    s["config"]["masters_b"] = [w.b_master]  # the operator's new master address
    w.state.write_text(json.dumps(s))
    assert migrate(w, "advance") == 0
    assert "PASS  mesos leader among masters A" in capsys.readouterr().out

    # Phase 3: the hook is asked to stop A's masters; until that is done and the sync reversed, the gate fails.
    assert migrate(w, "advance") == 1
    assert "FAIL  mesos masters A stopped" in capsys.readouterr().out
    w.mesos.stop_master(0)
    w.mesos.stop_master(1)
    w.mesos.elect(2)
    assert migrate(w, "advance") == 1  # the engine still syncs A→B
    assert "not syncing" in capsys.readouterr().out
    w.engine.run(w.zk.b.connect_string, w.zk.a.connect_string)
    w.zk.cb.set(f"{w.zk.root}/state", b"written on B")
    assert migrate(w, "advance", "--wait", "20") == 0
    assert "PASS  mesos masters A stopped" in capsys.readouterr().out
    assert w.zk.ca.get(f"{w.zk.root}/state")[0] == b"written on B"

    # Phase 4, then a rollback to 3 (the hook undoes 4), then phase 4 again.
    w.mesos.add_agent("agent-b1")
    assert migrate(w, "advance") == 0
    assert migrate(w, "rollback", "--to", "3") == 0
    assert state(w)["phase"] == 3 and w.calls.read_text().splitlines()[-1] == "4 undo 4"
    assert migrate(w, "advance") == 0 and state(w)["phase"] == 4

    # Phase 5: refused while agent-a1 still runs a task.
    assert migrate(w, "advance") == 1
    assert "agent-a1: 1 live tasks" in capsys.readouterr().out
    w.mesos.remove_task(next(iter(w.mesos.tasks)))  # Marathon moved it to B
    w.mesos.add_marathon_task("/app", agent=1)
    assert migrate(w, "advance") == 0

    # Phase 6: no archive while the engine still writes A; then archive and done.
    assert migrate(w, "advance") == 1
    assert "not archiving A while it is still being written" in capsys.readouterr().out
    w.engine.stop()
    assert migrate(w, "advance") == 0
    out = capsys.readouterr().out
    assert "archived A: 2 znodes" in out and "Migration complete" in out
    final = state(w)
    assert final["phase"] == 6 and final["archive_key"].startswith("ensemble-a/")
    assert w.s3.head_object(Bucket="zk-archive", Key=final["archive_key"])["ContentLength"] > 0
    rules = w.s3.get_bucket_lifecycle_configuration(Bucket="zk-archive")["Rules"]
    assert rules[0]["Expiration"]["Days"] == 3
    assert migrate(w, "status") == 0
    assert "phase 6/6 complete" in capsys.readouterr().out
    assert [line.split()[:2] for line in w.calls.read_text().splitlines()] == [
        ["1", "apply"], ["2", "apply"], ["3", "apply"], ["4", "apply"], ["4", "undo"], ["4", "apply"],
        ["5", "apply"], ["6", "apply"]]


def test_start_refuses_an_unhealthy_platform_and_bad_config(world, capsys):
    w = world
    w.marathon.fail_over(None)
    assert migrate(w, "start", "--config", write_config(w)) == 1
    assert "FAIL  marathon leader: no leader elected (/v2/leader answered 404)" in capsys.readouterr().out
    assert not w.state.exists()
    w.marathon.fail_over(0)
    assert migrate(w, "start", "--config", write_config(w, paths=["relative"])) == 2
    assert "invalid znode path" in capsys.readouterr().err
    assert migrate(w, "start", "--config", write_config(w, masters_a=["a-host:5050"])) == 2
    assert "not an http(s) URL" in capsys.readouterr().err
    cfg = dict(w.config)
    del cfg["archive"]
    (w.tmp / "partial.yaml").write_text(yaml.safe_dump(cfg))
    assert migrate(w, "start", "--config", str(w.tmp / "partial.yaml")) == 2
    assert "partial.yaml: archive: required key is missing" in capsys.readouterr().err
    assert not w.state.exists()
    assert migrate(w, "start", "--config", write_config(w)) == 0
    assert migrate(w, "start", "--config", write_config(w)) == 2  # never overwrite a migration under way
    assert "already exists" in capsys.readouterr().err


def test_dry_run_changes_nothing_and_failed_hook_blocks(world, capsys, monkeypatch):
    w = world
    assert migrate(w, "start", "--config", write_config(w, hook=str(w.hook))) == 0
    before = w.state.read_bytes()
    assert migrate(w, "advance", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "dry run: phase 1" in out and "orchestrator zk sync --source" in out
    assert w.state.read_bytes() == before and not w.calls.exists()

    monkeypatch.setenv("HOOK_EXIT", "3")
    assert migrate(w, "advance") == 1
    assert "hook failed with exit code 3" in capsys.readouterr().out
    s = state(w)
    assert s["phase"] == 0 and not s["pending"]["hook_done"]


def test_gates_fail_on_task_failures_and_zookeeper_quorum_loss(world, capsys):
    w = world
    assert migrate(w, "start", "--config", write_config(w)) == 0
    w.engine.run(w.zk.a.connect_string, w.zk.b.connect_string)
    assert migrate(w, "advance") == 0
    assert "operator, please do phase 1:" in capsys.readouterr().out  # no hook: printed instructions

    for _ in range(2):
        w.mesos.finish_task(w.mesos.add_marathon_task("/app").id, "TASK_FAILED")
    assert migrate(w, "validate") == 1
    assert "FAIL  no task failures: 2 failed/lost since the migration began" in capsys.readouterr().out

    victim = next(n for n in w.zk.b.nodes if w.zk.b.mode(n) == "follower")
    w.zk.b.stop_node(victim)
    assert migrate(w, "validate") == 1
    assert f"127.0.0.1:{victim.client_port}=down" in capsys.readouterr().out
    assert migrate(w, "advance") == 1  # phase 1 no longer holds: phase 2 is not started
    assert "refusing to start phase 2" in capsys.readouterr().out
    assert state(w)["phase"] == 1 and state(w)["pending"] is None


def test_rollback_to_before_the_migration_resumes_after_a_failed_gate(world, capsys):
    w = world
    assert migrate(w, "start", "--config", write_config(w, hook=str(w.hook))) == 0
    w.engine.run(w.zk.a.connect_string, w.zk.b.connect_string)
    assert migrate(w, "advance") == 0
    assert migrate(w, "rollback", "--to", "5") == 2
    assert "can only roll back to a phase before 1" in capsys.readouterr().err

    w.marathon.fail_over(None)  # something else is wrong meanwhile: the rollback cannot complete
    assert migrate(w, "rollback", "--to", "0") == 1
    assert state(w)["pending"] == {"action": "undo", "phase": 1, "to": 0, "hook_done": True}
    assert migrate(w, "advance") == 2  # no advancing while a rollback is unfinished
    w.marathon.fail_over(0)
    assert migrate(w, "rollback", "--to", "0") == 0
    assert state(w)["phase"] == 0
    assert w.calls.read_text().splitlines() == ["1 apply 1", "1 undo 1"]  # the undo hook ran once
