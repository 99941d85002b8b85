"""The supervisor's fallback where no mount namespace can be made (not root): storage and volumes as variables."""

from __future__ import annotations

import json
from pathlib import Path

from spacehub.runtime.backends.local_mounts import NEEDS_ROOT
from spacehub.runtime.supervise import Supervisor


def test_without_a_mount_namespace_storage_and_volumes_come_as_variables(tmp_path: Path) -> None:
    data = tmp_path / "storage" / "0123456789abcdef01234567-k1"
    launch = {
        "log_path": str(tmp_path / "run.log"),
        "data_dir": str(data),
        "volumes": [{"src": "/vol/model1-abc/weights", "dst": "/models/m", "checkout": "/vol/model1-abc"}],
        "data_mode": "env",
        "data_reason": NEEDS_ROOT,
    }
    sup = Supervisor(tmp_path, launch, {"HF_HOME": "/data/.huggingface", "PORT": "1"})
    note = sup.mount_data()
    assert sup.env["SPACE_DATA_DIR"] == str(data)
    assert sup.env["HF_HOME"] == f"{data}/.huggingface"  # the platform's default follows the storage
    assert json.loads(sup.env["SPACE_VOLUMES"]) == {"/models/m": "/vol/model1-abc/weights"}
    assert note == (f"/data unavailable ({NEEDS_ROOT}); SPACE_DATA_DIR={data}; "
                    f"volumes not mounted ({NEEDS_ROOT}): see SPACE_VOLUMES")  # fmt: skip


def test_a_users_hf_home_is_left_alone_and_no_storage_sets_nothing(tmp_path: Path) -> None:
    launch = {"log_path": str(tmp_path / "run.log"), "data_dir": str(tmp_path / "d"), "data_mode": "env"}
    sup = Supervisor(tmp_path, launch, {"HF_HOME": "/home/user/.cache/hf"})
    sup.mount_data()
    assert sup.env["HF_HOME"] == "/home/user/.cache/hf"
    bare = Supervisor(tmp_path, {"log_path": str(tmp_path / "run.log")}, {})
    assert bare.mount_data() is None and bare.env == {}
