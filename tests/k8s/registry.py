"""A throwaway registry on loopback for the pod tier's docker Spaces: Debian's `docker-registry` (the CNCF
distribution registry, 2.8) with a config of its own (no auth, plain HTTP, its storage in a temporary folder),
listening on 127.0.0.1 at a free port. The node's containerd is told to pull from it over HTTP
(`Node.trust_registry`); podman pushes to it with ``--tls-verify=false`` (``kubernetes.registry_tls_verify``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.k8s.cluster import free_port

BINARY = shutil.which("docker-registry")


@contextlib.contextmanager
def registry() -> Iterator[str]:
    """Yields the registry's ``127.0.0.1:<port>``; stops it and removes its storage afterwards."""
    if BINARY is None:
        raise RuntimeError("docker-registry is not installed (scripts/install-system-deps installs it)")
    folder = Path(tempfile.mkdtemp(prefix="spacehub-registry-"))
    port = free_port()
    (folder / "config.yml").write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {folder / "storage"}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    log = open(folder / "registry.log", "wb")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen([BINARY, "serve", str(folder / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not answer: {(folder / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
