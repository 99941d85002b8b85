"""The guide's "temporarily upgrade your Space" example, end to end (examples/spaces/task-scheduler): a private Gradio
Space whose HF_TOKEN secret lets it read tasks.csv from a private dataset; a task scheduled in its interface makes it
request a GPU flavor for itself, restart on it, see runtime.hardware equal the request, run the task (a fake
training whose result goes to a model repo), mark it DONE with upload_file and set its hardware back to cpu-basic.
There is no GPU here: the server declares one T4 in its device inventory (runtime.devices), and alice has a billing
grant (paid hardware)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import start_server
from tests.e2e.conftest import EXAMPLES, Hub, runtime_env, stop_hub

pytestmark = pytest.mark.slow

DEVICES = json.dumps([{"id": "0", "model": "Tesla T4", "memory_gb": 16}])
GPU = "t4-medium"
RUN_TIMEOUT = 240  # a first build installs gradio (a real one: this app imports it)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    env = runtime_env(uv_cache, SPACEHUB_RUNTIME__DEVICES=DEVICES, SPACEHUB_RUNTIME__RECONCILE_INTERVAL="1")
    server = start_server(tmp_path_factory.mktemp("tasks") / "data", env=env)
    alice = server.user("alice")
    h = Hub(server, alice, HfApi(endpoint=server.url, token=alice))
    yield h
    stop_hub(h)


def schedule(hub: Hub, space: str, model_id: str, dataset_id: str) -> str:
    """Submit a task in the Space's Gradio interface (its API, as gradio_client calls it), through the proxy."""
    headers = {"host": hub.host(space), "authorization": f"Bearer {hub.alice}"}
    info = httpx.get(f"{hub.url}/gradio_api/info", headers=headers, timeout=30).json()
    (api_name,) = info["named_endpoints"]
    call = httpx.post(f"{hub.url}/gradio_api/call{api_name}", json={"data": [model_id, dataset_id]}, headers=headers,
                      timeout=30)  # fmt: skip
    assert call.status_code == 200, call.text
    result = httpx.get(f"{hub.url}/gradio_api/call{api_name}/{call.json()['event_id']}", headers=headers, timeout=60)
    assert "event: complete" in result.text, result.text
    return result.text


def read(api: HfApi, repo_id: str, path: str, repo_type: str | None = None) -> str:
    return Path(api.hf_hub_download(repo_id, path, repo_type=repo_type, force_download=True)).read_text()


def test_the_task_scheduler_runs_a_task_on_a_gpu_then_goes_back_to_cpu(hub: Hub, tmp_path: Path) -> None:
    api = hub.api
    hub.server.cli("billing", "grant", "alice")  # a GPU flavor has a price: a community grant
    token = hub.server.cli("tokens", "create", "alice", "--token-name", "task-scheduler").strip().splitlines()[-1]
    tasks, base, concept, out = (hub.name(n) for n in ("tasks", "base-model", "concept", "finetuned"))
    api.create_repo(tasks, repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=b"alice/old-base,alice/old-concept,DONE\n", path_in_repo="tasks.csv",
                    repo_id=tasks, repo_type="dataset")  # fmt: skip
    api.create_repo(base)
    api.upload_file(path_or_fileobj=b'{"hidden_size": 8}', path_in_repo="config.json", repo_id=base)
    api.create_repo(concept, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a photo", path_in_repo="images/1.txt", repo_id=concept, repo_type="dataset")

    space = hub.name("task-scheduler")
    api.create_repo(space, repo_type="space", space_sdk="gradio", private=True)
    api.add_space_secret(space, "HF_TOKEN", token)
    for key, value in (("TASK_DATASET_ID", tasks), ("OUTPUT_MODEL_ID", out), ("TRAINING_HARDWARE", GPU)):
        api.add_space_variable(space, key, value)
    api.upload_folder(repo_id=space, repo_type="space", folder_path=EXAMPLES / "task-scheduler")
    rt = hub.wait(space, "RUNNING", RUN_TIMEOUT)
    assert (rt.hardware, rt.requested_hardware) == ("cpu-basic", "cpu-basic")
    deadline = time.monotonic() + 60
    while not any("no task scheduled" in line for line in hub.logs(space, quiet=0.5)):
        assert time.monotonic() < deadline, hub.report(space)

    # a user schedules a task: the app adds it to tasks.csv and asks for the GPU
    answer = schedule(hub, space, base, concept)
    assert f"Scheduled: the Space restarts on {GPU}" in answer, answer
    assert f"{base},{concept},PENDING" in read(api, tasks, "tasks.csv", "dataset")
    assert api.get_space_runtime(space).requested_hardware == GPU

    # the Space runs on the GPU, then comes back to cpu-basic
    seen: list[tuple[str | None, str | None]] = []
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        rt = api.get_space_runtime(space)
        if not seen or seen[-1] != (rt.hardware, rt.requested_hardware):
            seen.append((rt.hardware, rt.requested_hardware))
        back = (GPU, GPU) in seen and (rt.stage, rt.hardware, rt.requested_hardware) == ("RUNNING", "cpu-basic",
                                                                                           "cpu-basic")  # fmt: skip
        if back:
            break
        assert time.monotonic() < deadline, f"hardware seen: {seen}\n" + hub.report(space)
        time.sleep(0.3)
    assert seen[0] == ("cpu-basic", GPU) and (GPU, GPU) in seen and seen[-1] == ("cpu-basic", "cpu-basic"), seen

    # every step of the task happened, once
    assert read(api, tasks, "tasks.csv", "dataset").splitlines() == [
        "alice/old-base,alice/old-concept,DONE", f"{base},{concept},DONE",
    ]  # fmt: skip
    result = json.loads(read(api, out, f"results/{concept.replace('/', '--')}.json"))
    assert result["hardware"] == GPU and result["cuda_visible_devices"] == "0", result
    assert (result["base_model"], result["base_config"], result["dataset"]) == (base, {"hidden_size": 8}, concept)
    assert result["dataset_files"] == [".gitattributes", "images/1.txt"] and result["steps"] == 10, result
    assert api.model_info(out).private
    run = "\n".join(hub.logs(space))
    assert run.count(f"running ('{base}', '{concept}') on {GPU}") == 1, run[-3000:]
    assert f"task ('{base}', '{concept}') done: back to cpu-basic" in run, run[-3000:]
    assert run.count("no task scheduled") >= 2, run[-3000:]  # at the first start and after coming back
    assert "the scheduler failed" not in run and 'app.py", line' not in run, run[-3000:]
    # the interface works again, and no new task is pending
    assert schedule(hub, space, "", "").count("Give a base model and a dataset") == 1
    assert token not in json.dumps(api.get_space_runtime(space).raw)
