"""An auditor verifies a read-only copy: `verify`, `root` and `standing` work on a registry this
user cannot write, and every write is refused in one line before it does any work.

Root ignores file permissions, so the CLI runs as an unprivileged user (`nobody`, through
setpriv or runuser) against copies in a folder it can read but not write, or in a file it
cannot write; with the -wal file of a registry that was open when it was copied, and without
one (copied after a checkpoint). Each copy must show the ledger the original holds.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import shutil
import site
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import socialcredit
from socialcredit.registry import Registry, instant
from socialcredit.store import ReadOnly

from conftest import event
from processes import clean_env, cli

AT = "2026-06-01"
EVENTS = [event(f"resident{i % 5}", "traffic.violation", f"2026-01-{1 + i % 28:02d}T08:00:00Z", i, provider="police")
          for i in range(60)]


# -- running the CLI as a user that file permissions apply to -------------------------------------


@functools.cache
def _auditor() -> tuple[list[str], int]:
    """The command prefix that runs a program as a user without root's right to ignore file
    permissions, and that user's uid."""
    if os.geteuid() != 0:
        return [], os.geteuid()  # file permissions already apply to this process's user
    nobody = pwd.getpwnam("nobody").pw_uid
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups"], nobody
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"], nobody
    pytest.skip("running as root, and neither setpriv nor runuser is here to run the CLI as another user")


@functools.cache
def _auditor_python() -> tuple[str, dict]:
    """A Python the auditor can run, with this interpreter's packages and this source tree.

    This interpreter may live where the auditor cannot go (a pyenv under /root); the system's
    Python of the same version then runs the same packages."""
    prefix, _ = _auditor()
    trees = [str(Path(socialcredit.__file__).parents[1]), *site.getsitepackages()]
    same_version = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/usr/local/bin")
    # Where the tree and its packages sit in a folder only root can enter (a clone made with
    # mktemp -d, as CI's is), the auditor gets a copy of just the packages the CLI imports.
    for paths in ({"PYTHONPATH": os.pathsep.join(trees)}, {"PYTHONPATH": _reachable_copy(trees)}):
        for python in (sys.executable, same_version):
            if python and subprocess.run([*prefix, python, "-c", "import socialcredit.cli"], env=clean_env(**paths),
                                         capture_output=True).returncode == 0:
                return python, paths
    pytest.skip(f"no Python {sys.version_info.major}.{sys.version_info.minor} that user {prefix} can run with "
                "this tree's packages")


def _reachable_copy(trees: list[str]) -> str:
    """A world-readable copy of the top-level packages the CLI imports, from `trees`."""
    import socialcredit.cli  # noqa: F401  (what it imports is what the auditor's CLI needs)
    import socialcredit.policy.lint  # noqa: F401

    target = Path(tempfile.mkdtemp(prefix="socialcredit-auditor-packages-"))
    tops = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        for tree in trees:
            if path.startswith(tree + os.sep):
                tops.add((tree, Path(path).relative_to(tree).parts[0]))
    for tree, top in tops:
        source = Path(tree) / top
        if source.is_dir():
            shutil.copytree(source, target / top, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target / top)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return str(target)


def _as_auditor(url: str, *args: str, home: Path, key: str | None = None) -> subprocess.CompletedProcess:
    return _as_auditor_at_once(url, [list(args)], home=home, key=key)[0]


def _as_auditor_at_once(url: str, commands: list[list[str]], *, home: Path,
                        key: str | None = None) -> list[subprocess.CompletedProcess]:
    """Run the commands as the auditor, all at the same time (none of them writes)."""
    prefix, _ = _auditor()
    python, paths = _auditor_python()
    env = clean_env(HOME=str(home), **paths) | ({"SOCIALCREDIT_KEY": key} if key else {})
    running = [subprocess.Popen([*prefix, python, *cli(url, *args)[1:]], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
               for args in commands]
    done = []
    for process in running:
        stdout, stderr = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


def _stderr_lines(done: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()


# -- the original and its copies -------------------------------------------------------------------


@pytest.fixture(scope="module")
def place():
    """A folder the auditor can reach (pytest's own temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="socialcredit-auditor-"))
    folder.chmod(0o755)
    yield folder
    for path in folder.rglob("*"):  # give back the write bits the copies were stripped of
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def original(place):
    """Two snapshots of one registry: its files taken while it was open, its newest commits in
    its -wal file alone ("wal"), and its database file after a checkpoint ("checkpointed");
    what it holds; and its key."""
    folder = place / "original"
    folder.mkdir()
    db = folder / "registry.db"
    with Registry.init(f"sqlite:///{db}") as registry:
        registry.ingest(EVENTS)
        head = registry.root()
        truth = {"size": head.size, "root": head.root, "score": registry.standing("resident1", at=AT).score}
        snapshots = {"wal": place / "snapshot-wal", "checkpointed": place / "snapshot-checkpointed"}
        for name, suffixes in (("wal", ["", "-wal", "-shm"]), ("checkpointed", [""])):
            if name == "checkpointed":
                checkpoint = sqlite3.connect(db)
                checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything into the database file
                checkpoint.close()
            snapshots[name].mkdir()
            for suffix in [*suffixes, ".key"]:
                shutil.copy2(f"{db}{suffix}", snapshots[name] / f"registry.db{suffix}")
    assert truth["size"] == 1 + len(EVENTS)
    key = json.loads((folder / "registry.db.key").read_text())["key"]
    return snapshots, truth, key


@pytest.fixture(scope="module")
def bad_events(place) -> Path:
    """An events file that ingest would refuse on its own: refused as read-only, it was never read."""
    path = place / "bad.jsonl"
    path.write_text('{"subject": "resident1", "type": "no.such.type"}\n')
    path.chmod(0o644)
    return path


def _entries_in_the_file_alone(db: Path) -> int:
    """What the database file holds without its log (read as an immutable file)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        return connection.execute("SELECT count(*) FROM entries").fetchone()[0]
    finally:
        connection.close()


def _copy(original, place: Path, name: str, *, log: bool, layout: str, with_key: bool = True,
          shm: bool = True) -> Path:
    """A copy of the registry: with its -wal and -shm files (taken while it is open) or after a
    checkpoint (no log); in a folder the auditor cannot write (`layout` "folder") or in one it
    can, the files being root's (`layout` "file"); the key file the auditor's own (mode 0600)."""
    source = original[0]["wal" if log else "checkpointed"]
    _, auditor = _auditor()
    folder = place / name
    folder.mkdir()
    suffixes = ["", "-wal", "-shm"] if log else [""]
    if log and not shm:
        suffixes.remove("-shm")
    for suffix in suffixes:
        target = folder / f"registry.db{suffix}"
        shutil.copyfile(source / f"registry.db{suffix}", target)
        target.chmod(0o444)
    if with_key:
        key = folder / "registry.db.key"
        shutil.copyfile(source / "registry.db.key", key)
        if os.geteuid() == 0:
            os.chown(key, auditor, auditor)
        key.chmod(0o600)
    if layout == "folder":
        folder.chmod(0o555)
    elif os.geteuid() == 0:
        os.chown(folder, auditor, auditor)  # the auditor may write the folder, not the database files
    return folder / "registry.db"


# -- the tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("log", [True, False], ids=["with-wal", "checkpointed"])
@pytest.mark.parametrize("layout", ["folder", "file"], ids=["read-only-folder", "read-only-file"])
def test_an_auditor_verifies_a_read_only_copy_and_cannot_write_it(original, place, bad_events, layout, log):
    _, truth, key = original
    db = _copy(original, place, f"{layout}-{'wal' if log else 'checkpointed'}", log=log, layout=layout)
    if log:  # the newest entries are in the log alone: a reader that skipped it would see fewer
        assert os.path.getsize(f"{db}-wal") > 0
        assert _entries_in_the_file_alone(db) < truth["size"]
    else:
        assert not Path(f"{db}-wal").exists() and _entries_in_the_file_alone(db) == truth["size"]
    url = f"sqlite:///{db}"
    # The "file" layout names the key through SOCIALCREDIT_KEY as well; it must be the same key.
    env_key = key if layout == "file" else None

    verified, head, standing, refused = _as_auditor_at_once(url, [
        ["verify", "--json"], ["root", "--json"], ["standing", "resident1", "--at", AT, "--json"],
        ["ingest", str(bad_events)]], home=place, key=env_key)

    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert (report["ok"], report["size"], report["root"]) == (True, truth["size"], truth["root"])

    assert head.returncode == 0, head.stderr
    assert json.loads(head.stdout) == {"size": truth["size"], "root": truth["root"]}

    assert standing.returncode == 0, standing.stderr
    assert json.loads(standing.stdout)["score"] == truth["score"]
    assert _stderr_lines(standing) == [f"warning: {url} is read-only here, so this read is not recorded in its "
                                       "audit log"]

    assert refused.returncode == 2
    assert _stderr_lines(refused) == [f"error: cannot ingest: {url} is read-only here (this user cannot write the "
                                      "file); it can be read and verified, not written"]


def test_every_write_on_a_read_only_copy_is_refused_before_its_work(original, place, bad_events):
    db = _copy(original, place, "writes", log=True, layout="folder")
    url = f"sqlite:///{db}"
    # Each command is given something its own work would refuse (a bad event, a bad service
    # name, an entry that is not there): the read-only refusal must come first.
    writes = {
        "ingest": ["ingest", str(bad_events)],
        "check (every decision is logged)": ["check", "resident1", "Not A Service"],
        "void an entry": ["void", "999999", "--reason", "audit"],
        "put a policy in force": ["policy", "activate", "rongcheng"],
        "rebuild standings": ["rebuild"],
    }
    for (doing, args), done in zip(writes.items(), _as_auditor_at_once(url, list(writes.values()), home=place)):
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert _stderr_lines(done) == [f"error: cannot {doing}: {url} is read-only here (this user cannot write "
                                       "the file); it can be read and verified, not written"], args


def test_a_copy_without_the_key_still_verifies_and_gives_its_root(original, place):
    _, truth, _ = original
    db = _copy(original, place, "keyless", log=False, layout="folder", with_key=False)
    url = f"sqlite:///{db}"
    # Naming a subject (standing) needs the key; verify and root do not.
    verified, head, standing = _as_auditor_at_once(url, [["verify", "--json"], ["root", "--json"],
                                                         ["standing", "resident1"]], home=place)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["root"] == truth["root"]
    assert json.loads(head.stdout) == {"size": truth["size"], "root": truth["root"]}
    assert standing.returncode == 2
    assert _stderr_lines(standing) == [f"error: the registry's key file {db}.key was not found; `socialcredit init` "
                                       "creates it, or SOCIALCREDIT_KEY can supply the key"]


def test_a_log_copied_without_its_shm_file_is_refused_not_read_as_an_older_ledger(original, place):
    db = _copy(original, place, "no-shm", log=True, layout="folder", shm=False)
    url = f"sqlite:///{db}"
    assert _entries_in_the_file_alone(db) < original[1]["size"]  # reading the file alone would be wrong
    done = _as_auditor(url, "root", home=place)
    assert done.returncode == 2
    [line] = _stderr_lines(done)
    assert line.startswith(f"error: {url} cannot be read here: its write-ahead log registry.db-wal holds changes"), line
    assert "copy registry.db-shm too" in line


def test_the_library_skips_the_audit_record_of_a_read_it_cannot_write_and_refuses_writes(make_registry):
    registry = make_registry()
    registry.ingest(EVENTS[:10])
    audited = registry.store.audit.query(limit=1000)
    # As if the operating system refused writes (the CLI tests above make it really refuse them).
    registry.store.db.read_only_cause = "a test says so"
    assert registry.store.db.writable is False

    report = registry.standing("resident1", at=AT)
    assert report.score == registry.fold_subject(registry.pseudonym("resident1"), instant(AT)).score
    assert report.entries == 2
    assert registry.audit_trail.unrecorded == 1
    with pytest.raises(ReadOnly, match=r"^cannot ingest: .* is read-only here \(a test says so\)"):
        registry.ingest([{"subject": "resident1", "type": "no.such.type"}])  # refused before validation
    with pytest.raises(ReadOnly, match=r"^cannot check \(every decision is logged\)"):
        registry.check("resident1", "finance.loan")
    with pytest.raises(ReadOnly, match=r"^cannot write to it: "):  # any other write, below the facade
        with registry.store.db.write():
            pass
    assert registry.store.audit.query(limit=1000) == audited  # no read, no decision recorded
    assert registry.size() == 11 and registry.verify().ok is True


def test_a_registry_this_process_can_write_says_so(make_registry):
    db = make_registry().store.db
    assert (db.writable, db.read_only_cause) == (True, None)
