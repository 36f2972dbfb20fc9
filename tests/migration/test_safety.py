"""Data safety of `orchestrator migrate` (issue 15; red-team F7, F11, F12, F14, F15): one command at a time
(a lock between real processes), a state file written atomically with mode 0600 that never holds a
credential and is validated on load, a target that is the source under another spelling refused, and
gates that say what they compared and refuse an empty comparison."""
from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest
import yaml

from orchestrator.cli import main
from tests.migration.helpers import AUTH, AUTH_ENV, migrate, migrate_process, state, wait_for_file, write_config

SECRET = AUTH.split(":", 2)[2]


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


# -- F7: the lock ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("second_args", [("advance",), ("rollback", "--to", "0")])
def test_a_second_migrate_is_refused_while_one_runs_its_hook(world, monkeypatch, second_args):
    w = world
    assert migrate(w, "start", "--config", write_config(w, hook=str(w.hook))) == 0
    w.engine.run(w.zk.a.connect_string, w.zk.b.connect_string)
    gate = w.tmp / "gate"
    monkeypatch.setenv("HOOK_GATE", str(gate))  # the first advance's hook waits inside until released
    first = migrate_process(w, "advance")
    second = None
    try:
        wait_for_file(w.tmp / "gate.started", first)
        second = migrate_process(w, *second_args)
        _, err = second.communicate(timeout=90)
        assert second.returncode == 6, err
        assert one_line(err).endswith(f"another migrate holds the lock on {w.state} (pid {first.pid}); wait for it "
                                      "to finish, then run the command again")
    finally:
        (w.tmp / "gate.release").touch()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                try:
                    proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    out, err = first.communicate()
    assert first.returncode == 0, out + err
    assert w.calls.read_text().splitlines() == ["1 apply 1"]  # exactly one hook ran
    s = state(w)
    assert s["phase"] == 1 and s["pending"] is None
    assert [h["event"] for h in s["history"]] == ["started", "phase-complete"]
    # Once the first is done, the same command goes through.
    if second_args[0] == "rollback":
        assert migrate(w, *second_args) == 0
        assert w.calls.read_text().splitlines() == ["1 apply 1", "1 undo 1"] and state(w)["phase"] == 0


# -- F11: the state file's mode and credentials ------------------------------------------------------------

def test_state_is_0600_atomic_and_holds_only_a_reference_to_the_credentials(world):
    w = world
    old = os.umask(0o022)
    try:
        assert migrate(w, "start", "--config", write_config(w)) == 0
    finally:
        os.umask(old)
    text = w.state.read_text()
    assert stat.S_IMODE(w.state.stat().st_mode) == 0o600
    assert stat.S_IMODE((w.tmp / "state.json.lock").stat().st_mode) == 0o600
    assert SECRET not in text and json.loads(text)["config"]["auth"] == f"env:{AUTH_ENV}"

    w.state.chmod(0o644)  # as an older version left it
    assert migrate(w, "advance") == 1  # the phase-1 gate fails (no sync engine), but the state is saved
    assert stat.S_IMODE(w.state.stat().st_mode) == 0o600 and state(w)["pending"]["phase"] == 1
    assert not [p.name for p in w.tmp.iterdir() if p.name.endswith(".tmp")]  # no temporary file left


def test_credentials_are_given_by_reference_only(world, capsys, monkeypatch):
    w = world
    for auth in ([AUTH], AUTH):  # the old list form, or a credential where a reference belongs
        assert migrate(w, "start", "--config", write_config(w, auth=auth)) == 2
        line = one_line(capsys.readouterr().err)
        assert "auth:" in line and "file:/path" in line and "env:NAME" in line and SECRET not in line
    assert migrate(w, "start", "--config", write_config(w), "--auth", AUTH) == 2
    line = one_line(capsys.readouterr().err)
    assert "--auth-env NAME or --auth-file PATH" in line and SECRET not in line

    monkeypatch.delenv(AUTH_ENV)
    assert migrate(w, "start", "--config", write_config(w)) == 2
    assert f"the environment variable {AUTH_ENV} is not set" in one_line(capsys.readouterr().err)
    assert not w.state.exists()

    secret_file = w.tmp / "zk-auth"
    secret_file.write_text(AUTH + "\n")
    secret_file.chmod(0o600)
    cfg = {k: v for k, v in w.config.items() if k != "auth"}
    (w.tmp / "noauth.yaml").write_text(yaml.safe_dump(cfg))
    assert migrate(w, "start", "--config", str(w.tmp / "noauth.yaml"), "--auth-file", str(secret_file)) == 0
    assert state(w)["config"]["auth"] == f"file:{secret_file}" and SECRET not in w.state.read_text()
    assert migrate(w, "validate") == 0  # the credentials are read from the file at each command


# -- F15: the state and config are validated on load -------------------------------------------------------

VALID_CONFIG = {"source": "127.0.0.1:2181", "target": "127.0.0.1:2182", "paths": ["/mesos"],
                "masters_a": ["http://127.0.0.1:1"], "masters_b": ["http://127.0.0.1:2"],
                "agents_a": ["agent-a1"], "agents_b": ["agent-b1"],
                "marathon": ["http://127.0.0.1:3"], "sync_metrics": "http://127.0.0.1:4/metrics",
                "archive": "s3://zk-archive/a"}
VALID_STATE = {"version": 2, "config": VALID_CONFIG, "phase": 2, "pending": None, "baseline_task_failures": 0,
               "archive_key": None, "history": [{"time": "2026-11-30T08:00:00+00:00", "event": "started"}]}


def _changed(**changes: object) -> str:
    doc = json.loads(json.dumps(VALID_STATE))
    for key, value in changes.items():
        if key.startswith("config_"):
            doc["config"][key[7:]] = value
        elif value is ...:
            del doc[key]
        else:
            doc[key] = value
    return json.dumps(doc)


@pytest.mark.parametrize("text, expected", [
    (_changed(phase=99), "phase: Input should be less than or equal to 6"),
    (_changed(phase=-3), "phase: Input should be greater than or equal to 0"),
    (_changed(phase="2"), "phase: Input should be a valid integer"),
    (_changed(phase=True), "phase: Input should be a valid integer"),
    (_changed(owner="me"), "owner: unknown key"),
    (_changed(config=...), "config: required key is missing"),
    (_changed(pending={"action": "apply", "hook_done": False}), "pending.phase: required key is missing"),
    (_changed(pending={"action": "apply", "phase": 5, "hook_done": False}), "does not follow phase 2"),
    (_changed(pending={"action": "undo", "phase": 2, "hook_done": True}), "does not fit phase 2"),
    (_changed(history=[{"time": "x"}]), "history: entry 0 needs"),
    (_changed(version=1), "state version 1"),
    (_changed(version=3), "version: Input should be 2"),
    (_changed(config_hook=5), "config.hook: Input should be a valid string"),
    (_changed(config_max_lag_seconds=True), "config.max_lag_seconds: Input should be a valid number"),
    (_changed(config_frameworks=[]), "config.frameworks: List should have at least 1 item"),
    (_changed(config_auth=[AUTH]), "config.auth: credentials are never stored"),
    (_changed(config_auth=AUTH), "config.auth: credentials are never stored"),
    (_changed(config_target="127.0.0.1:2181"), "source and target are the same ensemble"),
    ("[1, 2]", "(top level): expected a mapping"),
    ('{"version": 2, "config": ', "not valid JSON"),
    ("", "not valid JSON"),
])
def test_a_bad_state_file_is_one_line_and_changes_nothing(tmp_path, capsys, text, expected):
    path = tmp_path / "state.json"
    path.write_text(text)
    for command in (["status"], ["advance"], ["rollback", "--to", "0"], ["validate"]):
        assert main(["migrate", *command, "--state", str(path)]) == 2
        line = one_line(capsys.readouterr().err)
        assert str(path) in line and expected in line
        assert SECRET not in line
    assert path.read_text() == text


@pytest.mark.parametrize("change, expected", [
    ({"source": 2181}, "source: Input should be a valid string"),
    ({"retention_hours": "72"}, "retention_hours: Input should be a valid integer"),
    ({"retention_hours": 50}, "retention_hours: S3 expiry counts whole days"),
    ({"hook": 5}, "hook: Input should be a valid string"),
    ({"max_lag_seconds": True}, "max_lag_seconds: Input should be a valid number"),
    ({"frameworks": []}, "frameworks: List should have at least 1 item"),
    ({"paths": []}, "paths: List should have at least 1 item"),
    ({"agents_a": []}, "agents_a: List should have at least 1 item"),
    ({"archive": "s3://zk-archive/../x"}, "archive:"),
    ({"masters_a": ["a-host:5050"]}, "not an http(s) URL"),
    ({"source": "127.0.0.1:99999"}, "source: expected host:port"),
    ({"extra": 1}, "extra: unknown key"),
])
def test_a_bad_config_is_one_line(tmp_path, capsys, change, expected):
    path = tmp_path / "migration.yaml"
    path.write_text(yaml.safe_dump({**VALID_CONFIG, **change}))
    assert main(["migrate", "start", "--config", str(path), "--state", str(tmp_path / "state.json")]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(path) in line and expected in line
    assert not (tmp_path / "state.json").exists()


# -- F3/F12: the same ensemble under another spelling -----------------------------------------------------

def test_start_refuses_a_target_that_is_the_source_spelled_differently(world, capsys):
    w = world
    a = w.zk.a.connect_string
    localhost = a.replace("127.0.0.1", "localhost")
    # Another host name, one member of the list, and a chroot that puts B's tree inside A's.
    for target in (localhost, a.split(",")[0], localhost + w.zk.root):
        assert migrate(w, "start", "--config", write_config(w, target=target)) == 6
        line = one_line(capsys.readouterr().err)
        assert "same ensemble" in line
        assert not w.state.exists()
    assert w.zk.ca.get_children(w.zk.root) == ["state"]  # nothing was copied into A


# -- F14: gates say what they compared and refuse an empty comparison --------------------------------------

def test_the_trees_gate_refuses_an_empty_comparison_and_shows_counts(world, capsys):
    w = world
    absent = w.zk.root + "-absent"
    w.zk.extra_roots.append(absent)
    assert migrate(w, "start", "--config", write_config(w, paths=[absent])) == 0
    capsys.readouterr()
    assert migrate(w, "validate", "--phase", "1") == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if "trees identical" in x]
    assert line.strip().startswith("FAIL  trees identical A→B") and absent in line

    w.state.unlink()
    assert migrate(w, "start", "--config", write_config(w)) == 0
    w.engine.run(w.zk.a.connect_string, w.zk.b.connect_string)
    capsys.readouterr()
    assert migrate(w, "validate", "--phase", "1") == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if "trees identical" in x]
    assert "PASS  trees identical A→B: A 2 znodes, B 2 znodes" in line
