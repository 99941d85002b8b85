"""The "Manage your Space" guide's secrets, variables and duplicate calls, word for word, against a live SpaceHub
running real apps: huggingface_hub 1.33.0 (the guide's own calls, `duplicate_space` included) and 2.x (the same
with `duplicate_repo(repo_type="space")`, which replaced it).

Each Space runs tests/compat/guide_settings_app.py, which answers ``GET /env/NAME`` with its environment variable
NAME and the random id of its start (``boot``): the scenario asks for the secrets and variables it set, through the
Space proxy, and checks that every change restarted the app (a new start that sees the new value).

    python guide_settings.py --endpoint URL --workdir DIR --prefix P --app APP.py --readme README.md
    # tokens: SCENARIO_TOKEN (alice, write) and SCENARIO_BOB_TOKEN (bob, write), from the environment

Prints one JSON line per step (``{"step", "status": "ok", ...}``) and exits 1 at the first failure. Standard library
and huggingface_hub only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ap = argparse.ArgumentParser()
ap.add_argument("--endpoint", required=True)
ap.add_argument("--workdir", required=True)
ap.add_argument("--prefix", required=True)
ap.add_argument("--app", required=True)
ap.add_argument("--readme", required=True)
ap.add_argument("--timeout", type=float, default=120.0)
ARGS = ap.parse_args()
TOKEN, BOB_TOKEN = os.environ["SCENARIO_TOKEN"], os.environ["SCENARIO_BOB_TOKEN"]
WORK = Path(ARGS.workdir).resolve()
WORK.mkdir(parents=True, exist_ok=True)
for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
    os.environ.pop(var, None)
os.environ.update(HF_ENDPOINT=ARGS.endpoint, HF_HOME=str(WORK / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
                  HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_UPDATE_CHECK="1")  # fmt: skip

import huggingface_hub as hf  # noqa: E402
from huggingface_hub import HfApi  # noqa: E402

P = ARGS.prefix
api = HfApi(endpoint=ARGS.endpoint, token=TOKEN)
bob = HfApi(endpoint=ARGS.endpoint, token=BOB_TOKEN)
# Distinct values per run: the test scans the server's files and logs for them afterwards.
VALUES = {name: f"sv-{P}-{name}" for name in ("hf_token", "hf_token_create", "hf_token_dup", "bob_secret")}
S: dict[str, Any] = {}
STEPS: list[tuple[str, Callable[[], dict[str, Any] | None]]] = []


def step(fn: Callable[[], dict[str, Any] | None]) -> Callable[[], dict[str, Any] | None]:
    STEPS.append((fn.__name__.removeprefix("step_"), fn))
    return fn


def expect(cond: Any, message: str) -> None:
    if not cond:
        raise AssertionError(message)


# ---- helpers -------------------------------------------------------------------------------------------------
def app(repo_id: str, name: str = "") -> dict[str, Any] | None:
    """The app's answer through the Space proxy (``Host: {subdomain}.{domain}:{port}``), or None if it does not
    answer 200 with JSON (yet). Private Spaces get the caller's token."""
    host = S.setdefault(("host", repo_id), urlsplit(api.space_info(repo_id).host).netloc)
    req = urllib.request.Request(ARGS.endpoint + (f"/env/{name}" if name else "/"))
    req.add_header("Host", host)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_app(repo_id: str, name: str, value: str | None, not_boot: str | None = None) -> dict[str, Any]:
    """Wait until the app answers with ``name`` = ``value`` (None: unset) from a start other than ``not_boot``."""
    deadline = time.monotonic() + ARGS.timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = app(repo_id, name)
        if last is not None and last["value"] == value and last["boot"] != not_boot:
            return last
        time.sleep(0.2)
    stage = api.get_space_runtime(repo_id).stage
    raise AssertionError(f"{repo_id}: {name} is not {value!r} in a new process; last answer {last}, stage {stage}")


def boot(repo_id: str) -> str:
    out = app(repo_id)
    expect(out is not None, f"{repo_id} does not answer")
    return str(out["boot"])  # type: ignore[index]


def changed(repo_id: str, change: Callable[[], Any], name: str, value: str | None) -> dict[str, Any]:
    """Apply a change; the app must restart (a new start) and see ``name`` = ``value``."""
    before = boot(repo_id)
    change()
    return wait_app(repo_id, name, value, not_boot=before) | {"restarted_from": before}


def upload_src(repo_id: str, client: HfApi = api) -> None:
    """The guide's step 2, word for word: the app's folder is ``src/`` (made here from the test app)."""
    src = WORK / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir()
    shutil.copy(ARGS.readme, src / "README.md")
    shutil.copy(ARGS.app, src / "app.py")
    os.chdir(WORK)
    client.upload_folder(repo_id=repo_id, repo_type="space", folder_path="src/")


def status(exc: BaseException) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None)


# ---- the guide -----------------------------------------------------------------------------------------------
@step
def step_create_and_upload() -> dict[str, Any]:
    repo_id = S["repo"] = f"alice/{P}-guide"
    api.create_repo(repo_id=repo_id, repo_type="space", space_sdk="gradio")
    upload_src(repo_id)
    out = wait_app(repo_id, "HF_TOKEN", None)
    return {"boot": out["boot"]}


@step
def step_add_secret() -> dict[str, Any]:
    repo_id = S["repo"]
    return changed(
        repo_id,
        lambda: api.add_space_secret(repo_id=repo_id, key="HF_TOKEN", value=VALUES["hf_token"]),
        "HF_TOKEN",
        VALUES["hf_token"],
    )


@step
def step_add_variable() -> dict[str, Any]:
    repo_id = S["repo"]
    out = changed(
        repo_id,
        lambda: api.add_space_variable(repo_id=repo_id, key="MODEL_REPO_ID", value="user/repo"),
        "MODEL_REPO_ID",
        "user/repo",
    )
    expect(app(repo_id, "HF_TOKEN")["value"] == VALUES["hf_token"], "the secret is gone after a variable change")  # type: ignore[index]
    return out


@step
def step_list_secrets_and_variables() -> dict[str, Any]:
    repo_id = S["repo"]
    secrets = api.get_space_secrets(repo_id)  # 1.14+
    expect(list(secrets) == ["HF_TOKEN"] and secrets["HF_TOKEN"].updated_at is not None, f"secrets {secrets}")
    expect(not hasattr(secrets["HF_TOKEN"], "value"), "a secret carries a value")
    variables = api.get_space_variables(repo_id)
    expect({k: v.value for k, v in variables.items()} == {"MODEL_REPO_ID": "user/repo"}, f"variables {variables}")
    return {"secrets": list(secrets), "variables": list(variables)}


@step
def step_delete_secret_and_variable() -> dict[str, Any]:
    repo_id = S["repo"]
    changed(repo_id, lambda: api.delete_space_secret(repo_id=repo_id, key="HF_TOKEN"), "HF_TOKEN", None)
    out = changed(
        repo_id, lambda: api.delete_space_variable(repo_id=repo_id, key="MODEL_REPO_ID"), "MODEL_REPO_ID", None
    )
    api.delete_space_secret(repo_id=repo_id, key="HF_TOKEN")  # already gone: not an error
    expect(api.delete_space_variable(repo_id=repo_id, key="MODEL_REPO_ID") == {}, "variables left")
    return out


@step
def step_create_with_secrets_and_variables() -> dict[str, Any]:
    repo_id = S["repo2"] = f"alice/{P}-guide-bonus"
    api.create_repo(
        repo_id=repo_id,
        repo_type="space",
        space_sdk="gradio",
        space_secrets=[{"key": "HF_TOKEN", "value": VALUES["hf_token_create"]}],
        space_variables=[{"key": "MODEL_REPO_ID", "value": "user/repo"}],
    )
    upload_src(repo_id)
    wait_app(repo_id, "HF_TOKEN", VALUES["hf_token_create"])
    return wait_app(repo_id, "MODEL_REPO_ID", "user/repo")


@step
def step_duplicate_a_space() -> dict[str, Any]:
    """``api.duplicate_space("multimodalart/dreambooth-training")``: someone else's Space, into your namespace."""
    source = S["bob_space"] = f"bob/{P}-dreambooth"
    bob.create_repo(source, repo_type="space", space_sdk="gradio",
                    space_secrets=[{"key": "BOB_SECRET", "value": VALUES["bob_secret"]}],
                    space_variables=[{"key": "GREETING", "value": "hello"}])  # fmt: skip
    upload_src(source, bob)
    if hasattr(api, "duplicate_space"):  # ≤ 1.x
        url = api.duplicate_space(source)
        via = "duplicate_space"
    else:
        url = api.duplicate_repo(source, repo_type="space")
        via = 'duplicate_repo(repo_type="space")'
    dup = url.repo_id
    expect(dup == f"alice/{P}-dreambooth", f"duplicate went to {dup}")
    expect(api.space_info(dup).private is True, "a duplicate is private by default")
    expect(set(api.list_repo_files(dup, repo_type="space")) == set(bob.list_repo_files(source, repo_type="space")),
           "files differ")  # fmt: skip
    expect(set(api.get_space_variables(dup)) == {"GREETING"} and api.get_space_secrets(dup) == {}, "settings copied")
    expect(api.get_space_runtime(dup).requested_hardware == "cpu-basic", "hardware of the duplicate")
    wait_app(dup, "GREETING", "hello")
    wait_app(dup, "BOB_SECRET", None)  # never the source's secrets

    def again(**kw: Any) -> Any:
        if via == "duplicate_space":
            return api.duplicate_space(source, **kw)
        return api.duplicate_repo(source, repo_type="space", **kw)

    try:
        again()
    except Exception as e:  # it exists: 409
        expect(status(e) == 409, f"second duplicate: {e!r}")
    else:
        raise AssertionError("a second duplicate to the same name did not fail")
    url = again(exist_ok=True)
    expect(url.repo_id == dup, f"exist_ok answered {url!r}")
    return {"via": via, "duplicate": dup}


@step
def step_duplicate_with_secrets_and_variables() -> dict[str, Any]:
    repo_id, to_id = S["repo2"], f"alice/{P}-guide-dup"
    secrets = [{"key": "HF_TOKEN", "value": VALUES["hf_token_dup"]}]
    variables = [{"key": "MODEL_REPO_ID", "value": "user/repo-dup"}]
    if hasattr(api, "duplicate_space"):
        url = api.duplicate_space(from_id=repo_id, to_id=to_id, secrets=secrets, variables=variables)
        via = "duplicate_space"
    else:
        url = api.duplicate_repo(from_id=repo_id, to_id=to_id, repo_type="space", space_secrets=secrets,
                                 space_variables=variables)  # fmt: skip
        via = 'duplicate_repo(repo_type="space")'
    expect(url.repo_id == to_id, f"duplicate url {url!r}")
    wait_app(to_id, "HF_TOKEN", VALUES["hf_token_dup"])  # the given secret, not the source's
    out = wait_app(to_id, "MODEL_REPO_ID", "user/repo-dup")
    expect(api.get_space_variables(to_id)["MODEL_REPO_ID"].value == "user/repo-dup", "variables of the duplicate")
    return {"via": via, "boot": out["boot"]}


def main() -> int:
    print(json.dumps({"step": "start", "status": "ok", "version": hf.__version__}), flush=True)
    for name, fn in STEPS:
        t0 = time.monotonic()
        try:
            details = fn() or {}
        except Exception as e:
            print(json.dumps({"step": name, "status": "failed", "error": f"{type(e).__name__}: {e}"}), flush=True)
            traceback.print_exc()
            return 1
        print(json.dumps({"step": name, "status": "ok", "seconds": round(time.monotonic() - t0, 2), **details}),
              flush=True)  # fmt: skip
    print(json.dumps({"step": "done", "status": "ok", "version": hf.__version__, "values": VALUES}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
