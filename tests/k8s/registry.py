"""A throwaway registry on loopback for the pod tier's docker Spaces: Debian's `docker-registry` (the CNCF
distribution registry, 2.8) with a config of its own (plain HTTP, its storage in a temporary folder), listening on
127.0.0.1 at a free port; with ``login``, every request (push and pull) needs that user and password (its
``htpasswd`` auth, bcrypt hashed with the system's libcrypt: no bcrypt package or htpasswd tool is needed). The
node's containerd is told to pull from it over HTTP (`Node.trust_registry`); podman pushes to it with
``--tls-verify=false`` (``kubernetes.registry_tls_verify``)."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import json
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


def bcrypt(password: str) -> str:
    """``password`` hashed as htpasswd -B does (what docker-registry's htpasswd auth reads), by libcrypt."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt_gensalt.restype, lib.crypt.restype = ctypes.c_char_p, ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$2b$", 10, None, 0)
    hashed = lib.crypt(password.encode(), salt) if salt else None
    if not hashed or not hashed.startswith(b"$2b$"):
        raise RuntimeError("this machine's libcrypt cannot hash with bcrypt")
    return hashed.decode()


def auth_file(path: Path, host: str, user: str, password: str) -> Path:
    """The credentials as `podman login --authfile` writes them (a containers auth.json), readable by its owner."""
    path.touch(mode=0o600)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


@contextlib.contextmanager
def registry(login: tuple[str, str] | None = None) -> Iterator[str]:
    """Yields the registry's ``127.0.0.1:<port>`` (with ``login``: (user, password) is needed for every request);
    stops it and removes its storage afterwards."""
    if BINARY is None:
        raise RuntimeError("docker-registry is not installed (scripts/install-system-deps installs it)")
    folder = Path(tempfile.mkdtemp(prefix="spacehub-registry-"))
    port = free_port()
    auth = ""
    if login is not None:
        (folder / "htpasswd").write_text(f"{login[0]}:{bcrypt(login[1])}\n")
        auth = f"auth:\n  htpasswd:\n    realm: spacehub-test\n    path: {folder / 'htpasswd'}\n"
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
{auth}""")
    log = open(folder / "registry.log", "wb")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen([BINARY, "serve", str(folder / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2, auth=login).status_code == 200:
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
