"""Secrets, variables and duplicates with real apps behind the proxy: what the app sees, that every change restarts
it without a gap and without a rebuild, key rotation under a running server, the guide's calls with clients 1.33.0
and 2.4.0 (tests/compat/guide_settings.py), and a scan that no secret value is anywhere it should not be: API
responses, logs, any file of the data dir (git objects included), the duplicate."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import EXAMPLES, Hub

pytestmark = pytest.mark.slow

COMPAT = Path(__file__).resolve().parents[1] / "compat"
APP = COMPAT / "guide_settings_app.py"
SCENARIO = COMPAT / "guide_settings.py"
RUN_TIMEOUT = 180  # a first build installs gradio (the app is an sdk: gradio Space)
SCENARIO_STEPS = [
    "create_and_upload",
    "add_secret",
    "add_variable",
    "list_secrets_and_variables",
    "delete_secret_and_variable",
    "create_with_secrets_and_variables",
    "duplicate_a_space",
    "duplicate_with_secrets_and_variables",
]


def env_of(hub: Hub, repo_id: str, name: str) -> dict[str, Any] | None:
    """The app's answer for its environment variable ``name`` (through the proxy), or None while it does not answer."""
    try:
        r = hub.get(repo_id, f"/env/{name}", token=hub.alice, timeout=10)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def wait_env(hub: Hub, repo_id: str, name: str, value: str | None, not_boot: str | None = None) -> dict[str, Any]:
    """Wait until the app sees ``name`` = ``value`` (None: unset), in a start other than ``not_boot``."""
    deadline, last = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        last = env_of(hub, repo_id, name)
        if last is not None and last["value"] == value and last["boot"] != not_boot:
            return last
        time.sleep(0.1)
    raise AssertionError(
        f"{repo_id}: {name} never became {value!r} (not boot {not_boot}); last {last}\n" + hub.report(repo_id)
    )


def upload_app(hub: Hub, repo_id: str, tmp_path: Path) -> None:
    hub.upload(repo_id, "python-http", tmp_path, files={"app.py": APP.read_text()}, create=False)


@contextmanager
def recorded_responses() -> Iterator[list[str]]:
    """Every response body the in-process client (2.4.0) receives, except event streams (their lines are what
    fetch_space_logs yields, collected by the test)."""
    from huggingface_hub.utils import _http

    bodies: list[str] = []

    def record(response: Any) -> None:
        if "text/event-stream" not in response.headers.get("content-type", ""):
            bodies.append(response.read().decode("utf-8", "replace") + json.dumps(dict(response.headers)))

    def factory() -> Any:
        client = _http.default_client_factory()
        client.event_hooks["response"] = [record]
        return client

    _http.set_client_factory(factory)
    try:
        yield bodies
    finally:
        _http.set_client_factory(_http.default_client_factory)


def leaks(hub: Hub, values: Iterable[str], texts: Iterable[str] = ()) -> list[str]:
    """Where any of ``values`` appears: in ``texts``, in the raw bytes of any file under the data dir (the database
    and its WAL, logs, runtime state, environments, git objects as stored), in every git object decompressed, in the
    server's log."""
    needles = [v.encode() for v in values]
    assert needles and all(len(n) >= 12 for n in needles)
    found = [f"text #{i}" for i, t in enumerate(texts) for n in needles if n.decode() in t]
    files = [p for p in hub.server.data_dir.rglob("*") if p.is_file() and not p.is_symlink()] + [hub.server.log]
    for path in files:
        try:
            with path.open("rb") as f:
                tail = b""
                while chunk := f.read(1 << 22):
                    block = tail + chunk
                    found += [str(path) for n in needles if n in block]
                    tail = block[-256:]
        except (FileNotFoundError, PermissionError):
            continue
    for git_dir in (hub.server.data_dir / "repos").glob("*.git"):
        objects = subprocess.run(
            ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=git_dir, capture_output=True, check=True
        ).stdout
        found += [f"git object in {git_dir.name}" for n in needles if n in objects]
    return sorted(set(found))


def test_secrets_reach_the_app_restart_it_without_a_gap_or_rebuild_and_never_leak(hub: Hub, tmp_path: Path) -> None:
    values = {k: f"sv-{k}-{secrets.token_hex(8)}" for k in ("create", "change", "after_rotation", "dup", "source")}
    marker = f"pv-marker-{secrets.token_hex(8)}"  # a variable: the scan must find it (it is not a secret)
    api = hub.api
    repo_id = hub.name("settings")
    with recorded_responses() as bodies:
        api.create_repo(
            repo_id,
            repo_type="space",
            space_sdk="gradio",
            space_secrets=[{"key": "HF_TOKEN", "value": values["create"], "description": "to upload"}],
            space_variables=[{"key": "MODEL_REPO_ID", "value": "user/repo"}, {"key": "MARKER", "value": marker}],
        )
        upload_app(hub, repo_id, tmp_path)
        hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
        first = wait_env(hub, repo_id, "HF_TOKEN", values["create"])
        assert wait_env(hub, repo_id, "MODEL_REPO_ID", "user/repo")["boot"] == first["boot"]
        build_log = (hub.server.data_dir / "spaces" / hub.space_id(repo_id) / "logs" / "build.log").read_text()
        (before,) = hub.instances(repo_id)

        # A new secret value: the next release of the same build replaces the app without a failed request.
        results: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=hub.url, headers={"host": hub.host(repo_id)}, timeout=10) as c:
                while not stop.is_set():
                    try:
                        r = c.get("/env/HF_TOKEN")
                        results.append((r.status_code, r.json()["value"] if r.status_code == 200 else r.text[:200]))
                    except (httpx.HTTPError, ValueError) as e:
                        results.append((0, repr(e)))
                    time.sleep(0.05)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        seen: list[str] = []
        try:
            time.sleep(0.5)
            api.add_space_secret(repo_id, "HF_TOKEN", values["change"])
            deadline = time.monotonic() + 60
            while not (seen and seen[-1] == "RUNNING" and any(v == values["change"] for _, v in results[-3:])):
                assert time.monotonic() < deadline, f"new secret not served; stages {seen}\n{hub.report(repo_id)}"
                stage = hub.runtime(repo_id).stage
                seen += [stage] if not seen or seen[-1] != stage else []
                time.sleep(0.05)
            time.sleep(0.5)
        finally:
            stop.set()
            loader.join(10)
        bad = [r for r in results if r[0] != 200]
        assert not bad, f"{len(bad)} of {len(results)} requests failed during the restart: {bad[:5]}"
        served = [v for _, v in results]
        switch = served.index(values["change"])
        assert set(served[:switch]) == {values["create"]} and set(served[switch:]) == {values["change"]}
        assert "RUNNING_APP_STARTING" in seen and set(seen) <= {"RUNNING", "RUNNING_APP_STARTING"}, seen
        second = wait_env(hub, repo_id, "HF_TOKEN", values["change"], not_boot=first["boot"])
        after = hub.only_instance(repo_id)
        assert after["build_id"] == before["build_id"] and after["release_id"] != before["release_id"]
        logs_dir = hub.server.data_dir / "spaces" / hub.space_id(repo_id) / "logs"
        assert (logs_dir / "build.log").read_text() == build_log  # no build ran: the environment was reused

        # A variable: a restart; a description alone: none.
        api.add_space_variable(repo_id, "MODEL_REPO_ID", "user/other")
        third = wait_env(hub, repo_id, "MODEL_REPO_ID", "user/other", not_boot=second["boot"])
        api.add_space_variable(repo_id, "MODEL_REPO_ID", "user/other", description="only the description")
        time.sleep(1.5)
        assert hub.runtime(repo_id).stage == "RUNNING"
        assert env_of(hub, repo_id, "MODEL_REPO_ID")["boot"] == third["boot"]

        # Key rotation with the server running: the app keeps its secret across a restart, new secrets work.
        key_file = hub.server.data_dir / "secrets.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        old_key = json.loads(key_file.read_text())["current"]
        out = hub.server.cli("secrets", "rotate-key")
        assert "re-encrypted" in out
        assert list(json.loads(key_file.read_text())["keys"]) != [old_key]
        api.restart_space(repo_id)
        fourth = wait_env(hub, repo_id, "HF_TOKEN", values["change"], not_boot=third["boot"])
        api.add_space_secret(repo_id, "LATER", values["after_rotation"])
        wait_env(hub, repo_id, "LATER", values["after_rotation"], not_boot=fourth["boot"])
        assert set(api.get_space_secrets(repo_id)) == {"HF_TOKEN", "LATER"}

        # A duplicate: the files and variables, the secrets given, never the source's.
        dup = hub.name("settings-dup")
        url = api.duplicate_repo(
            repo_id, dup, repo_type="space", space_secrets=[{"key": "DUP", "value": values["dup"]}]
        )
        assert url.repo_id == dup and api.space_info(dup).private is True
        hub.wait(dup, "RUNNING", RUN_TIMEOUT)
        wait_env(hub, dup, "DUP", values["dup"])
        assert wait_env(hub, dup, "MODEL_REPO_ID", "user/other")["value"] == "user/other"
        assert wait_env(hub, dup, "HF_TOKEN", None)["set"] is False and env_of(hub, dup, "LATER")["set"] is False

        logs = [line for r in (repo_id, dup) for b in (False, True) for line in api.fetch_space_logs(r, build=b)]
        for call in (api.space_info, api.get_space_runtime, api.get_space_variables, api.get_space_secrets):
            call(dup)
    names = [line for line in logs if "settings-app env names:" in line]
    assert any(re.search(r"\bHF_TOKEN\b", n) for n in names) and any(re.search(r"\bDUP\b", n) for n in names), names
    assert len(bodies) > 20, len(bodies)
    assert leaks(hub, values.values(), [*bodies, *logs]) == []
    found = leaks(hub, [marker], bodies)  # the scan works: a variable's value is in the database and the answers
    assert any(f.startswith("text #") for f in found) and any("spacehub.db" in f for f in found), found


@pytest.mark.parametrize("version", ["1.33.0", "2.4.0"])
def test_the_guides_calls_with_each_client(hub: Hub, tmp_path: Path, version: str) -> None:
    import huggingface_hub

    if version == "2.4.0":
        assert huggingface_hub.__version__ == version
        python = sys.executable
    else:
        from tests.compat.test_versions import client_python

        python = str(client_python(version))
    bob = hub.server.user("bob")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "PYTHON", "VIRTUAL_ENV"))}
    env.update(SCENARIO_TOKEN=hub.alice, SCENARIO_BOB_TOKEN=bob)
    prefix = f"g{version.replace('.', '')}-{os.getpid()}"
    cmd = [python, str(SCENARIO), "--endpoint", hub.url, "--workdir", str(tmp_path / "work"), "--prefix", prefix,
           "--app", str(APP), "--readme", str(EXAMPLES / "python-http" / "README.md")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    report = proc.stdout[-4000:] + "\n--- stderr ---\n" + proc.stderr[-6000:]
    assert proc.returncode == 0, f"huggingface_hub {version}: the guide's scenario failed\n{report}"
    assert lines[0]["version"] == version, report
    assert [line["step"] for line in lines[1:-1]] == SCENARIO_STEPS, report
    assert leaks(hub, lines[-1]["values"].values()) == []
