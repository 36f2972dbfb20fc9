"""Issue 15, render/check part: `--out` never replaces what the render did not write, the old render
survives any failure or signal, and bad input (stack files, policy JSON, options) is one clear line with
the exit-code table's code, bounded in time and memory.

Every CLI case runs the real `main()` or the real console script; the signal cases send real SIGINT/SIGTERM
to a real `orchestrator render` process.
"""
from __future__ import annotations

import datetime
import json
import os
import resource
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.errors import ExitCode
from orchestrator.toolchain.render import PROJECT_DIR

EXE = Path(sys.executable).with_name("orchestrator")
# Enough for a render (about 0.5 GB of address space here); a memory blow-up hits it instead of the machine.
MEMORY_LIMIT = 2 * 1024**3
MARKER = ".orchestrator-render"


# --- helpers -------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, object]:
    """Everything under root (files with bytes, directories, symlinks with targets), root included."""
    if root.is_symlink():
        return {".": ("symlink", os.readlink(root))}
    if root.is_file():
        return {".": root.read_bytes()}
    out: dict[str, object] = {".": "dir"}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("symlink", os.readlink(p))
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = p.read_bytes()
    return out


def render_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path):
    """A project directory with the real program and stacks, where tests add stack and policy files."""
    proj = tmp_path / "project"
    proj.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, proj / name)
    shutil.copytree(PROJECT_DIR / "deploy" / "marathon-apps", proj / "deploy" / "marathon-apps")  # dev's apps_dir
    return proj


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _limit_memory_with_default_signals() -> None:
    # A shell's background job (`.ci/run &`) inherits SIGINT ignored, and Python keeps an inherited SIG_IGN:
    # the signal tests need the disposition an interactive user's render has.
    _limit_memory()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script in its own process, under a memory limit (a bomb fails it, not the machine)."""
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          preexec_fn=_limit_memory, env={**os.environ, **(env or {})})


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    assert lines, "no error message"
    return "\n".join(lines)


# --- F1: --out never replaces what the render did not write ---------------------------------------
def _home_like(d: Path) -> Path:
    (d / "sub").mkdir(parents=True)
    (d / "thesis.txt").write_text("precious\n")
    (d / "sub" / "notes.md").write_text("more\n")
    (d / ".bashrc").write_text("export X=1\n")
    return d


def _git_repo(d: Path) -> Path:
    d.mkdir()
    subprocess.run(["git", "init", "-q", str(d)], check=True)
    (d / "main.py").write_text("print('code')\n")
    subprocess.run(["git", "-C", str(d), "add", "main.py"], check=True)
    subprocess.run(["git", "-C", str(d), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
                   check=True)
    return d


def _only_git(d: Path) -> Path:
    d.mkdir()
    subprocess.run(["git", "init", "-q", str(d)], check=True)
    return d


def _symlink_to_home(d: Path) -> Path:
    target = _home_like(d.parent / "real-home")
    d.symlink_to(target, target_is_directory=True)
    return d


def _a_file(d: Path) -> Path:
    d.write_text("important\n")
    return d


def _marked_dir_with_a_foreign_file(d: Path) -> Path:
    # A marker alone does not make every file in the directory ours: a file the render never wrote stays.
    assert main(["render", "--stack", "dev", "--out", str(d)]) == 0
    (d / "README.md").write_text("my notes about this render\n")
    return d


def _a_copied_marker(d: Path) -> Path:
    _home_like(d)
    (d / MARKER).write_text("# orchestrator render\n")
    return d


def _bare_manifests_tree(d: Path) -> Path:
    # Looks like a render (tier/manifests.yaml) but is someone's own manifests: no outputs contract.
    (d / "myapp").mkdir(parents=True)
    (d / "myapp" / "manifests.yaml").write_text("kind: Deployment\n")
    (d / "stack-outputs.json").write_text("{}\n")
    return d


NOT_OURS = {
    "bare-manifests-tree": _bare_manifests_tree,
    "home-like": _home_like,
    "git-repo": _git_repo,
    "only-dot-git": _only_git,
    "symlink-to-non-render": _symlink_to_home,
    "existing-file": _a_file,
    "marked-dir-with-foreign-file": _marked_dir_with_a_foreign_file,
    "copied-marker": _a_copied_marker,
}


@pytest.mark.parametrize("case", sorted(NOT_OURS))
@pytest.mark.parametrize("command", ["render", "check"])
def test_out_refuses_what_the_render_did_not_write(case, command, tmp_path, project, capsys):
    target = NOT_OURS[case](tmp_path / "out")
    parent_before = sorted(p.name for p in tmp_path.iterdir())
    before = {name: snapshot(tmp_path / name) for name in parent_before}
    capsys.readouterr()
    code = main([command, "--stack", "dev", "--out", str(target), "--project-dir", str(project)])
    err = one_error_line(capsys.readouterr().err)
    assert code == ExitCode.REFUSED, err
    assert str(target) in err or target.name in err
    # Nothing moved: the same names in the parent (no temporary or renamed siblings), byte for byte.
    assert sorted(p.name for p in tmp_path.iterdir()) == parent_before
    assert {name: snapshot(tmp_path / name) for name in parent_before} == before


def test_out_dot_inside_a_git_repository_is_refused(tmp_path, project, capsys, monkeypatch):
    """F1 as reported: `--out .` in a git work tree removed .git and the code, exit 0."""
    repo = _git_repo(tmp_path / "work")
    before = snapshot(repo)
    monkeypatch.chdir(repo)
    code = main(["render", "--stack", "dev", "--out", ".", "--project-dir", str(project)])
    assert code == ExitCode.REFUSED, capsys.readouterr().err
    assert snapshot(repo) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project", "work"]


def test_several_stacks_are_all_vetted_before_any_is_written(tmp_path, project, capsys):
    out = tmp_path / "out"
    _home_like(out / "prod")
    before = snapshot(out)
    code = main(["render", "--stack", "dev", "--stack", "prod", "--out", str(out), "--project-dir", str(project)])
    assert code == ExitCode.REFUSED, capsys.readouterr().err
    assert snapshot(out) == before  # out/dev was not written either


@pytest.mark.parametrize("kind", ["absent", "empty", "previous-render", "legacy-render", "symlink-to-render"])
def test_out_accepts_absent_empty_and_previous_renders(kind, tmp_path, project, capsys):
    fresh = tmp_path / "fresh"
    assert main(["render", "--stack", "prod", "--out", str(fresh), "--project-dir", str(project)]) == 0
    out = tmp_path / "out"
    if kind == "empty":
        out.mkdir()
    elif kind == "previous-render":
        assert main(["render", "--stack", "dev", "--out", str(out), "--project-dir", str(project)]) == 0
    elif kind == "legacy-render":
        # A render written before the marker existed: only <tier>/manifests.yaml and stack-outputs.json.
        (out / "zookeeper").mkdir(parents=True)
        (out / "zookeeper" / "manifests.yaml").write_text("kind: ConfigMap\n")
        (out / "stack-outputs.json").write_text('{"contract_version": "1"}\n')
    elif kind == "symlink-to-render":
        real = tmp_path / "real"
        assert main(["render", "--stack", "dev", "--out", str(real), "--project-dir", str(project)]) == 0
        out.symlink_to(real, target_is_directory=True)
    assert main(["render", "--stack", "prod", "--out", str(out), "--project-dir", str(project)]) == 0, \
        capsys.readouterr().err
    assert render_files(out) == render_files(fresh)
    assert (out / MARKER).is_file()
    if kind == "symlink-to-render":
        assert out.is_symlink()  # the link stays; the directory it names holds the new render
    # No temporary or old trees left next to it, and the directory is not private (mkdtemp's 0700).
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["project", "fresh", "out"] + (["real"] if kind == "symlink-to-render" else []))
    assert stat.S_IMODE(out.resolve().stat().st_mode) & 0o055 == 0o055 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_marker_is_not_something_argo_cd_would_apply(tmp_path, project):
    assert main(["render", "--stack", "dev", "--out", str(tmp_path / "o"), "--project-dir", str(project)]) == 0
    marker = tmp_path / "o" / MARKER
    assert marker.is_file() and marker.suffix not in (".yaml", ".yml", ".json")
    assert "orchestrator" in marker.read_text()


def test_committed_trees_carry_the_marker():
    """`orchestrator check` rewrites rendered/<stack>: the committed tree must be recognisably ours."""
    for name in ("dev", "prod"):
        assert (PROJECT_DIR / "rendered" / name / MARKER).is_file()


# --- F10: the old render survives any failure or signal -------------------------------------------
def _start_render(project: Path, out: Path, stack: str, pause_at: str | None) -> subprocess.Popen[str]:
    env = {**os.environ}
    env.pop("ORCHESTRATOR_TEST_PAUSE", None)
    if pause_at:
        env["ORCHESTRATOR_TEST_PAUSE"] = pause_at
        # A signal cuts the pause at "written" short; at "swapped" signals wait for the pause to end, so it
        # is only as long as a loaded machine may need between our reading the line and the signal landing.
        env["ORCHESTRATOR_TEST_PAUSE_S"] = "60" if pause_at == "written" else "8"
    return subprocess.Popen([str(EXE), "render", "--stack", stack, "--out", str(out), "--project-dir", str(project)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_limit_memory_with_default_signals)


def _wait_for_line(proc: subprocess.Popen[str], needle: str, limit_s: float = 120) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + limit_s
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1)
        if ready:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if needle in line:
                return
    proc.kill()
    proc.wait()
    pytest.fail(f"the render never reported {needle!r}: {''.join(seen)}")


@pytest.fixture
def two_renders(tmp_path, project):
    """`out` holds a dev render; the prod render differs from it, so old and new are told apart."""
    old, new = tmp_path / "old", tmp_path / "new"
    for stack, d in (("dev", old), ("prod", new)):
        proc = run_cli("render", "--stack", stack, "--out", str(d), "--project-dir", str(project), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    shutil.copytree(old, out)
    return project, out, render_files(old), render_files(new)


# Stages of a render at which a test-only hook (ORCHESTRATOR_TEST_PAUSE) holds the process: after the new
# tree is written next to the old one, and inside the swap (between the exchange and removing the old tree).
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", ["written", "swapped"])
def test_a_signal_at_each_stage_leaves_old_or_new_never_neither(stage, signum, two_renders):
    project, out, old, new = two_renders
    proc = _start_render(project, out, "prod", pause_at=stage)
    _wait_for_line(proc, f"paused at {stage}")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err
    after = render_files(out)
    # Before the swap the old render stays; once the exchange happened the new one is complete.
    assert after == (old if stage == "written" else new)
    assert sorted(p.name for p in out.parent.iterdir()) == ["new", "old", "out", "project"]


def test_signals_at_arbitrary_moments_never_leave_neither(two_renders):
    """Without the hook: signal real renders at spread-out moments; each ends with one whole tree."""
    project, out, old, new = two_renders
    outcomes = set()
    for i, delay in enumerate((0.3, 0.9, 1.3, 1.6, 1.9, 2.4)):
        proc = _start_render(project, out, "prod" if i % 2 == 0 else "dev", pause_at=None)
        time.sleep(delay)
        signum = signal.SIGTERM if i % 2 else signal.SIGINT
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        # -signum: the signal landed while the interpreter itself was starting, before main() ran (on a
        # loaded machine that can take longer than the first delays); nothing was written then either.
        assert proc.returncode in (ExitCode.OK, ExitCode.INTERRUPTED, -signum), err
        if proc.returncode != -signum:
            assert "Traceback" not in err
        after = render_files(out)
        assert after in (old, new), f"run {i}: out holds neither the old nor the new render"
        outcomes.add(proc.returncode)
        assert sorted(p.name for p in out.parent.iterdir()) == ["new", "old", "out", "project"]
    assert outcomes, "no run finished"


# --- F13/F15/F16: strict, bounded stack files ----------------------------------------------------
ALIAS_BOMB = ("config:\n  orchestrator:cluster_domain:\n"
              "    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
              + "".join(f"    {c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                        for p, c in zip("abcdefg", "bcdefgh", strict=True)))


BAD_STACK_FILES: dict[str, tuple[bytes, str]] = {
    "huge-replicas": (b"config:\n  orchestrator:zookeeper:\n    replicas: 100000000000000000001\n",
                      "Pulumi.bad.yaml: orchestrator:zookeeper.replicas:"),
    "huge-masters": (b"config:\n  orchestrator:mesos_master:\n    replicas: 1000001\n",
                     "Pulumi.bad.yaml: orchestrator:mesos_master.replicas:"),
    "huge-marathon": (b"config:\n  orchestrator:marathon:\n    replicas: 99999999\n",
                      "Pulumi.bad.yaml: orchestrator:marathon.replicas:"),
    "huge-service": (b"config:\n  orchestrator:service:\n    replicas: 99999999\n",
                     "Pulumi.bad.yaml: orchestrator:service.replicas:"),
    "int-too-long-to-parse": (b"config:\n  orchestrator:zookeeper:\n    replicas: 1" + b"0" * 5000 + b"\n",
                              "Pulumi.bad.yaml"),
    "alias-bomb": (ALIAS_BOMB.encode(), "Pulumi.bad.yaml"),
    "duplicate-key": (b"config:\n  orchestrator:production: true\n  orchestrator:production: false\n",
                      "Pulumi.bad.yaml: line 3: duplicate key 'orchestrator:production' (first on line 2)"),
    "duplicate-nested-key": (b"config:\n  orchestrator:zookeeper:\n    replicas: 3\n    replicas: 5\n",
                             "Pulumi.bad.yaml: line 4: duplicate key 'replicas' (first on line 3)"),
    "non-utf8": (b"config:\n  orchestrator:namespace: caf\xe9\n", "Pulumi.bad.yaml: not UTF-8"),
    "top-level-list": (b"- config\n- x\n", "Pulumi.bad.yaml: the top level must be a mapping"),
    "top-level-scalar": (b"just a string\n", "Pulumi.bad.yaml: the top level must be a mapping"),
    "non-string-key": (b"config:\n  5: x\n", "Pulumi.bad.yaml: config key 5"),
    "deep-nesting": (b"config:\n  orchestrator:zookeeper: " + b"[" * 20000 + b"]" * 20000 + b"\n",
                     "Pulumi.bad.yaml"),
    "recursive-alias": (b"config:\n  orchestrator:zookeeper: &r\n    resources: *r\n", "Pulumi.bad.yaml"),
    "too-big": (b"config:\n  orchestrator:cluster_domain: " + b"a" * (2 * 1024 * 1024) + b"\n",
                "Pulumi.bad.yaml: larger than"),
    "two-documents": (b"config: {}\n---\nconfig: {}\n", "Pulumi.bad.yaml"),
}


@pytest.mark.parametrize("case", sorted(BAD_STACK_FILES))
def test_bad_stack_file_is_one_clear_line_with_exit_2(case, tmp_path, project):
    body, expected = BAD_STACK_FILES[case]
    (project / "Pulumi.bad.yaml").write_bytes(body)
    proc = run_cli("render", "--stack", "bad", "--out", str(tmp_path / "o"), "--project-dir", str(project),
                   cwd=tmp_path)
    err = one_error_line(proc.stderr)
    assert proc.returncode == ExitCode.INPUT, err
    assert expected in err
    assert len(err) < 2000  # a message, not an echo of the input
    assert not (tmp_path / "o").exists()


def test_duplicate_key_across_spellings_is_refused(tmp_path, project, capsys):
    """`production:` and `orchestrator:production:` are the same key to the program."""
    (project / "Pulumi.bad.yaml").write_text("config:\n  production: true\n  orchestrator:production: false\n")
    assert main(["render", "--stack", "bad", "--out", str(tmp_path / "o"), "--project-dir", str(project)]) \
        == ExitCode.INPUT
    err = capsys.readouterr().err
    assert "Pulumi.bad.yaml: orchestrator:production: set twice" in err


def test_unreadable_stack_file_is_input_error(tmp_path, project, capsys):
    (project / "Pulumi.bad.yaml").mkdir()  # a directory where the file should be
    assert main(["render", "--stack", "bad", "--project-dir", str(project), "--out", str(tmp_path / "o")]) \
        == ExitCode.INPUT
    assert "Pulumi.bad.yaml" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("stacks", [["../dev"], ["dev/x"], ["-"], [""], [".hidden"]])
def test_bad_stack_names_are_usage_errors(stacks, tmp_path, project, capsys):
    args = ["render", "--project-dir", str(project), "--out", str(tmp_path / "o")]
    for s in stacks:
        args += [f"--stack={s}"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == ExitCode.INPUT
    assert "--stack" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_same_stack_twice_is_input_error(tmp_path, project, capsys):
    code = main(["render", "--stack", "dev", "--stack", "dev", "--project-dir", str(project),
                 "--out", str(tmp_path / "o")])
    assert code == ExitCode.INPUT
    assert "--stack: each stack once" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["render", "check", "diff"])
def test_project_dir_that_is_not_a_project(command, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "nope", tmp_path / "empty"):
        code = main([command, "--stack", "dev", "--project-dir", str(bad)]
                    + (["--out", str(tmp_path / "o")] if command != "diff" else []))
        assert code == ExitCode.INPUT
        assert "--project-dir" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


# --- F15: policy JSON and the policy pack --------------------------------------------------------
def _policy_project(project: Path) -> Path:
    shutil.copytree(PROJECT_DIR / "policy", project / "policy")
    return project / "policy" / "dev.json"


POLICY_CASES = {
    "malformed": (lambda p: p.write_text('{"ha-replicas-and-budgets": {"production": tru}'),
                  "policy/dev.json: not valid JSON"),
    "not-an-object": (lambda p: p.write_text("[1, 2]\n"), "policy/dev.json: must be a JSON object"),
    "entry-not-an-object": (lambda p: p.write_text('{"ha-replicas-and-budgets": true}\n'),
                            "policy/dev.json: ha-replicas-and-budgets: must be an object"),
    "duplicate-key": (lambda p: p.write_text('{"a": {}, "a": {"production": true}}\n'),
                      "policy/dev.json: duplicate key 'a'"),
    "not-utf8": (lambda p: p.write_bytes(b'{"a\xff": {}}'), "policy/dev.json: not UTF-8"),
    "a-directory": (lambda p: (p.unlink(), p.mkdir()), "policy/dev.json"),
    "no-rules": (lambda p: (p.parent / "rules.py").unlink(), "policy/rules.py"),
}


@pytest.mark.parametrize("case", sorted(POLICY_CASES))
def test_bad_policy_config_is_input_error_before_anything_runs(case, tmp_path, project, capsys):
    make, expected = POLICY_CASES[case]
    make(_policy_project(project))
    code = main(["check", "--stack", "dev", "--project-dir", str(project), "--out", str(tmp_path / "o")])
    err = one_error_line(capsys.readouterr().err)
    assert code == ExitCode.INPUT, err
    assert expected in err
    assert not (tmp_path / "o").exists()


# --- the other toolchain commands' input --------------------------------------------------------
def test_diff_refuses_bad_stack_names(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["diff", "--stack", "../dev"])
    assert exc.value.code == ExitCode.INPUT
    assert "--stack" in capsys.readouterr().err


def test_compose_with_a_bad_stack_is_input_error(project, capsys, monkeypatch):
    import orchestrator.toolchain.compose as compose

    (project / "Pulumi.dev.yaml").write_text("config:\n  orchestrator:zookeeper:\n    replicas: 100000000001\n")
    monkeypatch.setattr(compose, "PROJECT_DIR", project)
    assert main(["compose-prometheus", "--check"]) == ExitCode.INPUT
    assert "Pulumi.dev.yaml: orchestrator:zookeeper.replicas" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("url", ["s3://bucket/../x", "s3://bucket/a b", "s3://Bad_Bucket!/x", "s3://bucket/x?versionId=1#f",
                                 "s3://b/x", "s3://bucket//x", "s3://bucket/./x"])
def test_backend_check_refuses_malformed_urls(url, capsys):
    assert main(["backend", "check", "--url", url]) == ExitCode.INPUT
    assert "--url" in one_error_line(capsys.readouterr().err)


def test_backend_check_of_an_unreachable_endpoint_is_exit_5(capsys, monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(key, value)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["backend", "check", "--url", "s3://state-bucket", "--endpoint-url", f"http://127.0.0.1:{port}"])
    err = one_error_line(capsys.readouterr().err)
    assert code == ExitCode.UNREACHABLE, err
    assert f"127.0.0.1:{port}" in err


@pytest.mark.parametrize("endpoint", ["ftp://x", "http://[::1", "http://127.0.0.1:99999", "http://h/path?q=1"])
def test_backend_check_refuses_a_bad_endpoint_url(endpoint, capsys):
    assert main(["backend", "check", "--url", "s3://state-bucket", "--endpoint-url", endpoint]) == ExitCode.INPUT
    assert "--endpoint-url" in one_error_line(capsys.readouterr().err)


def test_backend_check_refuses_a_url_that_does_not_parse(capsys):
    assert main(["backend", "check", "--url", "s3://[bucket/x"]) == ExitCode.INPUT
    assert "--url" in one_error_line(capsys.readouterr().err)



# --- the swap's fallback and the vetting itself -------------------------------------------------------
def test_fallback_without_exchange_restores_the_old_tree_when_the_second_rename_fails(tmp_path, monkeypatch):
    """Where renameat2(RENAME_EXCHANGE) is missing the swap is two renames; a failure of the second one
    (injected: the only way to make rename(2) fail at that point) must put the old tree back."""
    from orchestrator.toolchain import render
    from tests.support.harness import stack

    out = tmp_path / "out"
    render.write_render(stack("dev"), out)
    before = render_files(out)
    monkeypatch.setattr(render, "_exchange", lambda a, b: False)
    real_rename = os.rename

    def failing_rename(src, dst):
        if Path(src).name.startswith(".out.render-"):
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(render.os, "rename", failing_rename)
    with pytest.raises(OSError):
        render.write_render(stack("prod"), out)
    assert render_files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    monkeypatch.setattr(render.os, "rename", real_rename)
    render.write_render(stack("prod"), out)  # and the fallback does swap when nothing fails
    assert render_files(out) != before and (out / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_vetting_refuses_the_root_and_home_and_changes_nothing(tmp_path, monkeypatch):
    from orchestrator.errors import RefusedError
    from orchestrator.toolchain.render import vet_out_dir

    for path in (Path("/"), Path.home()):
        with pytest.raises(RefusedError):
            vet_out_dir(path)  # vetting only: nothing is written whatever it decides


def test_out_where_nothing_may_be_written_is_input_error(tmp_path, project, capsys):
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs here (a file system where even root cannot create a directory)")
    code = main(["render", "--stack", "dev", "--out", "/sys/orchestrator-render-test", "--project-dir", str(project)])
    assert code == ExitCode.INPUT
    assert "cannot write in /sys" in one_error_line(capsys.readouterr().err)


def test_out_below_a_file_is_input_error(tmp_path, project, capsys):
    (tmp_path / "afile").write_text("x\n")
    code = main(["render", "--stack", "dev", "--out", str(tmp_path / "afile" / "sub"), "--project-dir", str(project)])
    assert code == ExitCode.INPUT
    assert "is a file, not a directory" in one_error_line(capsys.readouterr().err)
    assert (tmp_path / "afile").read_text() == "x\n"


def test_dangling_symlink_out_is_input_error(tmp_path, project, capsys):
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    code = main(["render", "--stack", "dev", "--out", str(tmp_path / "link"), "--project-dir", str(project)])
    assert code == ExitCode.INPUT
    assert not (tmp_path / "nowhere").exists()


# --- the strict YAML reader on its own --------------------------------------------------------------
def test_strict_yaml_accepts_ordinary_yaml_with_a_few_aliases_and_merges():
    from orchestrator.strict_yaml import loads

    text = ("\ufeffbase: &b {cpu: 1, mem: 2}\nzk:\n  <<: *b\n  cpu: 3\nlist: [*b, *b]\n"
            "when: 2024-01-01\nempty:\n")
    assert loads(text, "f.yaml") == {"base": {"cpu": 1, "mem": 2}, "zk": {"cpu": 3, "mem": 2},
                                     "list": [{"cpu": 1, "mem": 2}] * 2, "when": datetime.date(2024, 1, 1),
                                     "empty": None}
    assert loads("", "f.yaml") is None


@pytest.mark.parametrize("text,message", [
    ("a: 1\nb:\n  c: 2\n  c: 3\n", "f.yaml: line 4: duplicate key 'c' (first on line 3)"),
    ("true: 1\nTrue: 2\n", "f.yaml: line 2: duplicate key True (first on line 1)"),
    ("? [1]\n: x\n", "a mapping key must be a scalar"),
    ("a: &a 1\n" + "".join(f"k{i}: *a\n" for i in range(17)), "more than 16 aliases"),
    ("a: b: c\n", "f.yaml: line 1: not valid YAML"),
    ("a: \x00\n", "f.yaml: not valid YAML"),
    ("a: !!python/object:os.system x\n", "f.yaml"),
])
def test_strict_yaml_refusals_name_the_file_and_line(text, message):
    from orchestrator.strict_yaml import YamlError, loads

    with pytest.raises(YamlError) as exc:
        loads(text, "f.yaml")
    assert message in str(exc.value)
    assert exc.value.exit_code == ExitCode.INPUT


def test_strict_yaml_measures_an_alias_bomb_without_expanding_it():
    """With the alias limit lifted, the expanded-size bound alone still refuses the bomb."""
    from orchestrator.strict_yaml import YamlError, loads

    with pytest.raises(YamlError) as exc:
        loads(ALIAS_BOMB, "bomb.yaml", max_aliases=1000)
    assert "expands to more than 100000 values" in str(exc.value)


# --- count bounds in settings -------------------------------------------------------------------------
# The largest heap also needs a memory limit that leaves the JVM room (a cross-field rule of its own).
_BIG_MEMORY = {"resources": {"memory_request": "1Gi", "memory_limit": "100Gi"}}
BOUNDS = [("zookeeper", "replicas", 9, 11, {}), ("mesos_master", "replicas", 7, 9, {}),
          ("marathon", "replicas", 100, 101, {}), ("service", "replicas", 100, 101, {}),
          ("zookeeper", "heap_mb", 65536, 65537, _BIG_MEMORY), ("marathon", "heap_mb", 65536, 65537, _BIG_MEMORY),
          ("zookeeper", "init_limit", 1000, 1001, {}), ("service.canary", "analysis_count", 100, 101, {})]


@pytest.mark.parametrize("section,key,ok,bad,extra", BOUNDS)
def test_every_count_has_an_upper_bound(section, key, ok, bad, extra):
    from components.settings import SettingsError, settings_from_config

    def config(value: int) -> dict[str, str]:
        head, *rest = section.split(".")
        inner: dict[str, object] = {key: value, **(extra if not rest else {})}
        for part in reversed(rest):
            inner = {part: inner}
        return {f"orchestrator:{head}": json.dumps(inner)}

    settings_from_config(config(ok), "Pulumi.b.yaml")
    with pytest.raises(SettingsError) as exc:
        settings_from_config(config(bad), "Pulumi.b.yaml")
    assert f"Pulumi.b.yaml: orchestrator:{section}.{key}: Input should be less than or equal to {ok}" in str(exc.value)


def test_lists_are_bounded():
    from components.settings import SettingsError, settings_from_config

    cidrs = [f"10.0.{i}.0/24" for i in range(65)]
    with pytest.raises(SettingsError) as exc:
        settings_from_config({"orchestrator:security": json.dumps({"node_cidrs": cidrs})}, "Pulumi.b.yaml")
    assert "orchestrator:security.node_cidrs" in str(exc.value)


# --- the services' YAML files go through the same strict reader ----------------------------------
def _api_config(p: Path) -> None:
    from orchestrator.services.api.config import load_config

    load_config(p)


def _scaler_config(p: Path) -> None:
    from orchestrator.services.marathon.policy import load_config

    load_config(str(p))


def _marathon_apps(p: Path) -> None:
    from orchestrator.services.marathon.apps import load_apps

    load_apps(p.parent)


@pytest.mark.parametrize("reader", [_api_config, _scaler_config, _marathon_apps],
                         ids=["api-config", "scaler-config", "marathon-apps"])
@pytest.mark.parametrize("body,message", [
    (b"a: 1\nb: 2\na: 3\n", "line 3: duplicate key 'a' (first on line 1)"),
    (ALIAS_BOMB.replace("config:\n  orchestrator:cluster_domain:\n", "x:\n").encode(), "aliases"),
    (b"a: caf\xe9\n", "not UTF-8"),
])
def test_service_yaml_files_are_read_strictly(reader, body, message, tmp_path):
    from orchestrator.errors import InputError

    path = tmp_path / "in" / "file.yaml"
    path.parent.mkdir()
    path.write_bytes(body)
    with pytest.raises(InputError) as exc:
        reader(path)
    assert str(path) in str(exc.value) and message in str(exc.value)
