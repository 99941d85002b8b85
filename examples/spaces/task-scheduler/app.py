"""The guide's "temporarily upgrade your Space" example (manage-your-space.md), made to run end to end.

On startup the app looks for a scheduled task in ``tasks.csv`` of the ``TASK_DATASET_ID`` dataset. With none, it
only shows the interface, which schedules one and asks for ``TRAINING_HARDWARE``. With one, it runs it if it is on
that hardware (then marks it DONE and goes back to cpu-basic), else asks for that hardware: either way the Space
restarts. The interface is served in every case, so the platform sees the app start (a hardware change takes effect
when the new instance answers), and the work runs in a background thread.

Unlike the guide's sketch, the app checks the hardware it runs on with the platform's ``ACCELERATOR`` variable
before trusting ``runtime.hardware``: during the zero-downtime switch the runtime still shows the old instance's
hardware, and an old instance that saw the new one's hardware must not run the task a second time.
"""

import csv
import io
import json
import os
import threading
import time

import gradio as gr
from huggingface_hub import HfApi, hf_hub_download

# Space will need your token to request hardware: set it as a Secret !
HF_TOKEN = os.environ.get("HF_TOKEN")
# Space own repo_id (the platform sets SPACE_ID)
TRAINING_SPACE_ID = os.environ["SPACE_ID"]
# Dataset ID in which a `tasks.csv` file contains the tasks to perform: lines "model_id,dataset_id,PENDING|DONE"
TASK_DATASET_ID = os.environ.get("TASK_DATASET_ID", TRAINING_SPACE_ID + "-tasks")
OUTPUT_MODEL_ID = os.environ.get("OUTPUT_MODEL_ID", TRAINING_SPACE_ID + "-results")
TRAINING_HARDWARE = os.environ.get("TRAINING_HARDWARE", "t4-medium")
FREE_HARDWARE = "cpu-basic"

api = HfApi(token=HF_TOKEN)
status = {"text": "starting"}


def log(message: str) -> None:
    status["text"] = message
    print(f"[task-scheduler] {message}", flush=True)


# ---- the task scheduler: a CSV in a dataset ----------------------------------------------------------------------
def _get_csv_file() -> str:
    return hf_hub_download(repo_id=TASK_DATASET_ID, filename="tasks.csv", repo_type="dataset", token=HF_TOKEN)


def _read_tasks() -> str:
    with open(_get_csv_file()) as csv_file:
        return csv_file.read()


def get_task() -> tuple[str, str] | None:
    for row in csv.reader(io.StringIO(_read_tasks()), delimiter=","):
        if len(row) >= 3 and row[2] == "PENDING":
            return row[0], row[1]  # model_id, dataset_id
    return None


def add_task(task: tuple[str, str]) -> None:
    model_id, dataset_id = task
    tasks = _read_tasks().rstrip("\n")
    api.upload_file(
        repo_id=TASK_DATASET_ID,
        repo_type="dataset",
        path_in_repo="tasks.csv",
        # Quick and dirty way to add a task
        path_or_fileobj=(tasks + f"\n{model_id},{dataset_id},PENDING\n").lstrip("\n").encode(),
        commit_message=f"Add task {model_id} on {dataset_id}",
    )


def mark_as_done(task: tuple[str, str]) -> None:
    model_id, dataset_id = task
    tasks = _read_tasks()
    api.upload_file(
        repo_id=TASK_DATASET_ID,
        repo_type="dataset",
        path_in_repo="tasks.csv",
        # Quick and dirty way to set the task as DONE
        path_or_fileobj=tasks.replace(f"{model_id},{dataset_id},PENDING", f"{model_id},{dataset_id},DONE").encode(),
        commit_message=f"Task {model_id} on {dataset_id}: DONE",
    )


# ---- the work ------------------------------------------------------------------------------------------------------
def train_and_upload(task: tuple[str, str]) -> None:
    """A tiny fake fine-tuning: read the base model's config and the dataset's files, run ten "steps", upload."""
    model_id, dataset_id = task
    with open(hf_hub_download(repo_id=model_id, filename="config.json", token=HF_TOKEN)) as f:
        config = json.load(f)
    files = api.list_repo_files(dataset_id, repo_type="dataset")
    loss = 1.0
    for step in range(10):
        loss /= 2
        log(f"training {model_id} on {dataset_id}: step {step + 1}/10, loss {loss:.4f}")
        time.sleep(0.05)
    result = {
        "base_model": model_id,
        "base_config": config,
        "dataset": dataset_id,
        "dataset_files": files,
        "steps": 10,
        "loss": loss,
        "hardware": os.environ.get("ACCELERATOR"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    api.create_repo(OUTPUT_MODEL_ID, private=True, exist_ok=True)
    api.upload_file(
        repo_id=OUTPUT_MODEL_ID,
        path_in_repo=f"results/{dataset_id.replace('/', '--')}.json",
        path_or_fileobj=json.dumps(result, indent=1).encode(),
        commit_message=f"Fine-tuned {model_id} on {dataset_id}",
    )


def run_scheduled_task() -> None:
    """On Space startup, check if a task is scheduled. If yes, run it on the right hardware (the guide's skeleton)."""
    task = get_task()
    if task is None:
        log("no task scheduled: waiting for one")
        return
    if os.environ.get("ACCELERATOR") != TRAINING_HARDWARE:
        log(f"task {task} scheduled: requesting {TRAINING_HARDWARE}")
        api.request_space_hardware(repo_id=TRAINING_SPACE_ID, hardware=TRAINING_HARDWARE)
        return  # the Space restarts on it
    runtime = api.get_space_runtime(repo_id=TRAINING_SPACE_ID)
    deadline = time.monotonic() + 600
    while runtime.hardware != TRAINING_HARDWARE:  # this instance serves the Space once it answers HTTP
        if time.monotonic() > deadline:
            raise RuntimeError(f"the runtime never said {TRAINING_HARDWARE}: {runtime.raw}")
        time.sleep(1)
        runtime = api.get_space_runtime(repo_id=TRAINING_SPACE_ID)
    # Check if Space is loaded with a GPU: yes, finetune base model on dataset!
    log(f"running {task} on {runtime.hardware} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')})")
    train_and_upload(task)
    # Then, mark the task as "DONE"
    mark_as_done(task)
    # DO NOT FORGET: set back CPU hardware
    log(f"task {task} done: back to {FREE_HARDWARE}")
    api.request_space_hardware(repo_id=TRAINING_SPACE_ID, hardware=FREE_HARDWARE)


def scheduler() -> None:
    try:
        run_scheduled_task()
    except Exception as e:  # shown in the interface and the run log; the next restart tries again
        log(f"the scheduler failed: {e!r}")
        raise


# ---- the interface ---------------------------------------------------------------------------------------------------
def gradio_fn(model_id: str, dataset_id: str) -> str:
    """On user request, add task and request hardware."""
    if not model_id or not dataset_id:
        return "Give a base model and a dataset."
    pending = get_task()
    if pending is not None:
        return f"A task is already scheduled ({pending[0]} on {pending[1]}): wait until it is done."
    add_task((model_id, dataset_id))
    api.request_space_hardware(repo_id=TRAINING_SPACE_ID, hardware=TRAINING_HARDWARE)
    return f"Scheduled: the Space restarts on {TRAINING_HARDWARE} to fine-tune {model_id} on {dataset_id}."


demo = gr.Interface(
    fn=gradio_fn,
    inputs=[gr.Textbox(label="Base model"), gr.Textbox(label="Dataset")],
    outputs=gr.Textbox(label="Result"),
    title="Task scheduler",
    description=f"Fine-tunes a model on {TRAINING_HARDWARE}, then goes back to {FREE_HARDWARE}.",
)

if __name__ == "__main__":
    threading.Thread(target=scheduler, daemon=True).start()
    demo.launch()
