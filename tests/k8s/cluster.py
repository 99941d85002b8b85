"""The control-plane test tier: etcd + kube-apiserver + kube-controller-manager + kube-scheduler on loopback.

Binaries: kube-* from `scripts/k8s-build` (Kubernetes 1.20 built from Debian bookworm's source, cached outside git
by source version), etcd from Debian's etcd-server. Everything lives in one temporary folder (etcd's data, the
apiserver's self-signed serving certificate, the static token file, the service-account key pair, the kubeconfig
and each process's log); every process runs in its own session and is stopped by its process group, so `stop`
leaves no process and no state behind (probe: ../shared/reference/runtime-probes.md §1.4).

There is no kubelet here: Node objects are created by the tests and a stand-in kubelet (`kubelet.py`) plays the
nodes, or (the pod tier) `node.py` adds a real kubelet on containerd, which the apiserver reaches with the client
certificate made here.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "k8s-build"
KUBE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ETCD = "/usr/bin/etcd"


class Unavailable(RuntimeError):
    """The binaries are missing and cannot be built here (the message says why)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binaries(build: bool = True) -> Path:
    """The folder of the kube binaries: the cached build, else (``build``) a fresh one (~6 min cold).
    Raises: Unavailable."""
    check = subprocess.run([str(BUILD), "--check"], capture_output=True, text=True)
    if check.returncode == 0 and Path(ETCD).exists():
        return Path(check.stdout.strip())
    if not build:
        raise Unavailable("no cached Kubernetes build (run scripts/k8s-build)")
    run = subprocess.run([str(BUILD)], capture_output=True, text=True)
    if run.returncode != 0:
        raise Unavailable(f"scripts/k8s-build failed: {run.stderr.strip()[-2000:]}")
    if not Path(ETCD).exists():
        raise Unavailable(f"{ETCD} is missing after scripts/k8s-build")
    return Path(run.stdout.strip().splitlines()[-1])


def _wait(what: str, ready, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return time.monotonic() - start
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class ControlPlane:
    """A running control plane. ``kubeconfig`` points at it with an admin token (system:masters)."""

    bin_dir: Path
    workdir: Path
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    url: str = ""
    etcd_url: str = ""
    kubeconfig: Path = Path()

    @classmethod
    def start(cls, bin_dir: Path, scheduler: bool = True, controllers: bool = True) -> ControlPlane:
        cp = cls(bin_dir, Path(tempfile.mkdtemp(prefix="spacehub-k8s-")))
        try:
            cp._start(scheduler, controllers)
        except BaseException:
            cp.stop()
            raise
        return cp

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (the child keeps it; closed when we stop)
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.workdir,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def _keys(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.workdir / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
        (self.workdir / "sa.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        (self.workdir / "tokens.csv").write_text(f"{self.token},admin,admin,system:masters\n")
        (self.workdir / "tokens.csv").chmod(0o600)
        # Secrets are encrypted at rest in etcd (secretbox, a random key per cluster), as an operator should run it
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        encryption = {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [{"resources": ["secrets"], "providers": [
                {"secretbox": {"keys": [{"name": "k1", "secret": key}]}}, {"identity": {}}]}],
        }  # fmt: skip
        (self.workdir / "encryption.yaml").write_text(yaml.safe_dump(encryption))
        (self.workdir / "encryption.yaml").chmod(0o600)
        self._kubelet_client_cert()

    def _kubelet_client_cert(self) -> None:
        """A CA (``kubelet-ca.crt``) and the certificate the apiserver shows a real kubelet (the pod tier,
        node.py): the kubelet admits only this CA's clients, so logs and exec are not open to anyone on the host."""
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spacehub-test-kubelet-ca")])
        ca = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )  # fmt: skip
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-kubelet-client"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )  # fmt: skip
        pem = serialization.Encoding.PEM
        (self.workdir / "kubelet-ca.crt").write_bytes(ca.public_bytes(pem))
        (self.workdir / "kubelet-client.crt").write_bytes(cert.public_bytes(pem))
        (self.workdir / "kubelet-client.key").write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        (self.workdir / "kubelet-client.key").chmod(0o600)

    def _start(self, scheduler: bool, controllers: bool) -> None:
        w, t0 = self.workdir, time.monotonic()
        self._keys()
        client, peer, secure = free_port(), free_port(), free_port()
        etcd_url = self.etcd_url = f"http://127.0.0.1:{client}"
        etcd = self._spawn(
            "etcd",
            [
                ETCD,
                "--name",
                "test",
                "--data-dir",
                str(w / "etcd"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"test=http://127.0.0.1:{peer}",
                "--log-level",
                "warn",
            ],
        )
        self.timings["etcd"] = _wait(
            "etcd", lambda: httpx.get(f"{etcd_url}/health").json()["health"] == "true", 30, etcd, w / "etcd.log"
        )
        auth = {"Authorization": f"Bearer {self.token}"}
        for attempt in range(3):  # its port was free when chosen; another process may have taken it since
            secure = secure if attempt == 0 else free_port()
            try:
                self.url = f"https://127.0.0.1:{secure}"
                api = self._spawn(
                    "kube-apiserver",
                    [
                        str(self.bin_dir / "kube-apiserver"),
                        f"--etcd-servers={etcd_url}",
                        "--bind-address=127.0.0.1",
                        f"--secure-port={secure}",
                        "--insecure-port=0",
                        "--advertise-address=127.0.0.1",
                        f"--cert-dir={w / 'certs'}",
                        f"--token-auth-file={w / 'tokens.csv'}",
                        f"--encryption-provider-config={w / 'encryption.yaml'}",
                        "--authorization-mode=RBAC",
                        f"--service-account-key-file={w / 'sa.pub'}",
                        f"--service-account-signing-key-file={w / 'sa.key'}",
                        "--service-account-issuer=https://kubernetes.default.svc",
                        "--service-cluster-ip-range=10.96.0.0/16",
                        "--profiling=false",
                        "--anonymous-auth=false",  # a request without the token is refused (401), not anonymous
                        # a real kubelet (the pod tier) is reached at its node's InternalIP, with a client certificate
                        "--kubelet-preferred-address-types=InternalIP,Hostname",
                        f"--kubelet-client-certificate={w / 'kubelet-client.crt'}",
                        f"--kubelet-client-key={w / 'kubelet-client.key'}",
                        "--v=1",
                    ],
                )
                self.timings["kube-apiserver"] = _wait(
                    "kube-apiserver",
                    lambda: httpx.get(f"{self.url}/readyz", headers=auth, verify=False).text == "ok",
                    90,
                    api,
                    w / "kube-apiserver.log",
                )
                break
            except RuntimeError as e:
                if "address already in use" not in str(e) or attempt == 2:
                    raise
        self.kubeconfig = self._write_kubeconfig()
        kc = f"--kubeconfig={self.kubeconfig}"
        if controllers:
            self._spawn(
                "kube-controller-manager",
                [
                    str(self.bin_dir / "kube-controller-manager"),
                    kc,
                    "--bind-address=127.0.0.1",
                    "--secure-port=0",
                    "--port=0",
                    f"--service-account-private-key-file={w / 'sa.key'}",
                    f"--root-ca-file={w / 'certs' / 'apiserver.crt'}",
                    "--controllers=*,-nodeipam",
                    "--leader-elect=false",
                    "--use-service-account-credentials=false",
                    "--pvclaimbinder-sync-period=1s",  # bind a claim to a new volume at once, not within 15 s
                    "--v=1",
                ],
            )
        if scheduler:
            self._spawn(
                "kube-scheduler",
                [
                    str(self.bin_dir / "kube-scheduler"),
                    kc,
                    "--bind-address=127.0.0.1",
                    "--secure-port=0",
                    "--port=0",
                    "--leader-elect=false",
                    "--v=1",
                ],
            )
        self.timings["total"] = time.monotonic() - t0

    def _write_kubeconfig(self) -> Path:
        """A kubeconfig that trusts the apiserver's own self-signed certificate (it names 127.0.0.1)."""
        ca = self.workdir / "certs" / "apiserver.crt"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url, "certificate-authority": str(ca)}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        }
        path = self.workdir / "kubeconfig"
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return path

    def alive(self) -> dict[str, int | None]:
        return {name: p.poll() for name, p in self.procs.items()}

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop every process (SIGTERM to its group, SIGKILL after 10 s) and remove the folder."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)
