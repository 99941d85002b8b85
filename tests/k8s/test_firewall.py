"""The pod's own firewall (firewall.py), without a cluster: the rules a pod installs, read as netfilter reads them
(a small evaluator of the rule lines this module writes, first match wins, then the chain's policy), for every role
and set of options; the init container's program filling in what only the pod knows exactly as `render` does; and
the kernel taking every rule set, in a network namespace of its own (root only)."""

from __future__ import annotations

import ipaddress
import itertools
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from spacehub.config import KubernetesSettings
from spacehub.runtime.backends.kubernetes import firewall as fw
from spacehub.runtime.backends.kubernetes.firewall import Policy

NAMESERVERS = ("10.96.0.10", "fd00:96::a")
NODE = ("10.250.0.7", "10.244.3.1")  # status.hostIP, and the pod's gateway on the bridge
HUB_CIDRS = ("192.0.2.10/32", "2001:db8:10::/64")
HUB_BY_NAME = ("10.0.9.9", "fd00:9::9")  # what the Hub's host resolves to (an in-cluster Service)
CLUSTER = ("10.244.0.0/16", "10.96.0.0/12", "fd00:244::/56")
# another Space's pod, the node's other addresses, the cloud's metadata service, slirp's host, broadcast, the other
# private ranges, multicast, IPv6 neighbours on the link and NAT64 (10.0.0.1 behind it)
NEVER = ("10.244.3.17", "10.244.200.5", "10.96.0.1", "10.250.0.7", "10.244.3.1", "169.254.169.254", "10.0.2.2",
         "255.255.255.255", "172.16.5.5", "192.168.1.1", "100.64.0.1", "127.0.0.2", "224.0.0.251", "0.0.0.1",
         "fd00:244::17", "fe80::1", "ff02::1", "::1", "64:ff9b::a00:1", "fd12::1")  # fmt: skip
PUBLIC = ("203.0.113.80", "8.8.8.8", "2606:4700::1111")


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection (conntrack state NEW)."""

    chain: str  # INPUT or OUTPUT
    address: str  # the peer: the source in INPUT, the destination in OUTPUT
    port: int
    proto: str = "tcp"
    loopback: bool = False


def verdict(text: str, p: Packet) -> str:
    """What the rules ``text`` (iptables-restore, as this module writes them) do with ``p``."""
    policy, chain_rules = "", []
    for line in text.splitlines():
        if line.startswith(f":{p.chain} "):
            policy = line.split()[1]
        elif line.startswith(f"-A {p.chain} "):
            chain_rules.append(line.split()[2:])
    assert policy in ("DROP", "ACCEPT"), text
    peer = ipaddress.ip_address(p.address)
    for words in chain_rules:
        opts = dict(zip(words[::2], words[1::2], strict=False))
        target = words[words.index("-j") + 1]
        if "--ctstate" in opts and "NEW" not in opts["--ctstate"].split(","):
            continue  # RELATED,ESTABLISHED: not the first packet
        if ("-i" in opts or "-o" in opts) and not p.loopback:
            continue
        if "-p" in opts and opts["-p"] != p.proto:
            continue
        if "--dport" in opts and int(opts["--dport"]) != p.port:
            continue
        cidr = opts.get("-s" if p.chain == "INPUT" else "-d")
        if cidr is not None:
            net = ipaddress.ip_network(cidr, strict=False)
            if net.version != peer.version or peer not in net:
                continue
        return target
    return policy


def installed(p: Policy, family: int, hub: tuple[str, ...] = ()) -> str:
    return fw.rules(p, family, NAMESERVERS, NODE, hub)


def check(p: Policy, packet: Packet) -> str:
    family = ipaddress.ip_address(packet.address).version
    return verdict(installed(p, family, HUB_BY_NAME if p.hub_by_name else ()), packet)


def policies() -> list[Policy]:
    """Every role with every combination of the options that shape the rules."""
    out = []
    for hub_cidrs, by_name, ports, internet, role in itertools.product(
        ((), HUB_CIDRS), (False, True), ((), (8000,)), (False, True), ("app", "task", "build")
    ):
        app_port = 7860 if role == "app" else None
        out.append(Policy(hub_cidrs=hub_cidrs, hub_by_name=by_name, hub_ports=ports, blocked=CLUSTER,
                          internet=internet or role == "build", app_port=app_port, app_port_open=by_name))  # fmt: skip
    return out


def private(address: str) -> bool:
    """In a range no pod ever reaches (but for the Hub and DNS)."""
    a = ipaddress.ip_address(address)
    nets = (*fw.NOT_PUBLIC_V4, *fw.NOT_PUBLIC_V6, *CLUSTER)
    return any(a in ipaddress.ip_network(n) for n in nets if ipaddress.ip_network(n).version == a.version)


def hub_addresses(p: Policy) -> list[str]:
    return [str(ipaddress.ip_network(c).network_address) for c in p.hub_cidrs] + list(
        HUB_BY_NAME if p.hub_by_name else ()
    )


@pytest.mark.parametrize("policy", policies(), ids=lambda p: repr(p)[7:80])
def test_no_rule_lets_a_pod_reach_another_space_the_node_or_any_private_address(policy: Policy) -> None:
    for address, port, proto in itertools.product(NEVER, (80, 7860, 10250, 53, 8000), ("tcp", "udp")):
        got = check(policy, Packet("OUTPUT", address, port, proto))
        assert got == "REJECT", (address, port, proto, got)
    # DNS only to the pod's nameservers and on port 53; the Hub (on its ports, when given); public addresses only
    # with the internet (a build always)
    for ns in NAMESERVERS:
        assert check(policy, Packet("OUTPUT", ns, 53, "udp")) == "ACCEPT"
        assert check(policy, Packet("OUTPUT", ns, 53, "tcp")) == "ACCEPT"
        assert check(policy, Packet("OUTPUT", ns, 80)) == "REJECT"
    for hub in hub_addresses(policy):
        assert check(policy, Packet("OUTPUT", hub, 8000)) == "ACCEPT"
        # another port of the Hub: only as any address is, when the Hub's ports are given
        other_port = "ACCEPT" if not policy.hub_ports or (policy.internet and not private(hub)) else "REJECT"
        assert check(policy, Packet("OUTPUT", hub, 22)) == other_port
    for address in PUBLIC:
        assert check(policy, Packet("OUTPUT", address, 443)) == ("ACCEPT" if policy.internet else "REJECT")
    # loopback is the pod's own
    assert check(policy, Packet("OUTPUT", "127.0.0.1", 7860, loopback=True)) == "ACCEPT"


@pytest.mark.parametrize("policy", policies(), ids=lambda p: repr(p)[7:80])
def test_nothing_comes_in_but_the_app_port_from_the_hub_and_the_node(policy: Policy) -> None:
    sources = (*NEVER, *PUBLIC, *NAMESERVERS, *hub_addresses(policy), *NODE)
    hub, node = set(hub_addresses(policy)), set(NODE)
    for source, port in itertools.product(sources, (7860, 80, 22, 10250)):
        got = check(policy, Packet("INPUT", source, port))
        if policy.app_port is None or port != policy.app_port:
            assert got == "DROP", (source, port, got)  # a build or a task takes nothing; no other port
        elif policy.app_port_open:  # the Hub by pod labels: its address changes, every Space's egress refuses
            assert got == "ACCEPT"
        else:
            assert got == ("ACCEPT" if source in hub | node and source not in HUB_BY_NAME else "DROP"), (source, got)
    assert check(policy, Packet("INPUT", "127.0.0.1", 22, loopback=True)) == "ACCEPT"


def test_with_no_hub_peer_nothing_comes_in_but_the_nodes_probes() -> None:
    alone = Policy(blocked=CLUSTER, app_port=7860)
    for source in (*NEVER, *PUBLIC, *NAMESERVERS):
        if source not in NODE:
            assert check(alone, Packet("INPUT", source, 7860)) == "DROP", source
    for source in NODE:  # kubelet's readiness probe: from the node's address, or its address on the bridge
        assert check(alone, Packet("INPUT", source, 7860)) == "ACCEPT"
        assert check(alone, Packet("INPUT", source, 22)) == "DROP"
    # and out: nothing but DNS (the Hub is nowhere)
    assert check(alone, Packet("OUTPUT", "192.0.2.10", 8000)) == "REJECT"
    assert "ACCEPT" not in [verdict(installed(alone, 4), Packet("OUTPUT", a, 443)) for a in ("8.8.8.8", "10.0.0.1")]


def test_the_rules_are_whole_replace_the_table_and_refuse_loudly() -> None:
    p = Policy(hub_cidrs=HUB_CIDRS, blocked=CLUSTER, app_port=7860)
    for family in (4, 6):
        text = fw.template(p, family)
        assert text.startswith("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n")
        assert text.endswith("COMMIT\n")
        # a refusal says so at once (EHOSTUNREACH), it does not leave a connection to time out
        assert text.splitlines()[-2] == "-A OUTPUT -j REJECT --reject-with " + (
            "icmp-admin-prohibited" if family == 4 else "icmp6-adm-prohibited"
        )
        # each family gets its own addresses only
        other = "2001:db8:10::/64" if family == 4 else "192.0.2.10/32"
        assert other not in text
    # IPv6 lets neighbour discovery through, or nothing would leave the link
    assert "-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT" in fw.template(p, 6)
    # a placeholder line with no address of its family is left out
    assert fw.NODE not in fw.render(fw.template(p, 4), 4) and "-s  " not in fw.render(fw.template(p, 4), 4)
    for bad in ({"hub_cidrs": ("10.0.0.0/8 -j ACCEPT",)}, {"hub_cidrs": ("10.0.0.0/33",)}, {"blocked": ("",)},
                {"app_port": 0}, {"hub_ports": (70000,)}):  # fmt: skip
        with pytest.raises(ValueError):
            Policy(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fw.template(p, 5)


def test_the_settings_default_is_the_modules_image() -> None:
    k = KubernetesSettings()
    assert k.pod_firewall is True and k.firewall_image == fw.FIREWALL_IMAGE


# ---- the init container's program ------------------------------------------------------------------------------
ROUTES = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t0103F40A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"  # default via 10.244.3.1 (little-endian hex)
    "eth0\t0003F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
# a scoped link-local nameserver is no address iptables takes: the program leaves it out
RESOLV = "search spaces.svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00:96::a\nnameserver fe80::1%eth0\n" \
         "options ndots:5\n"  # fmt: skip
BY_NAME = Policy(hub_cidrs=HUB_CIDRS, hub_by_name=True, hub_ports=(8000,), blocked=CLUSTER, app_port=7860,
                 app_port_open=True)  # fmt: skip


def run(tmp: Path, p: Policy, hub_host: str | None = None, tools: dict[str, str] | None = None,
        wrap: tuple[str, ...] = (), after: str = "") -> subprocess.CompletedProcess[str]:  # fmt: skip
    """firewall.PROGRAM run here, with this test's resolv.conf, routes and termination log in ``tmp``; ``tools``:
    stand-in commands (name → sh body) ahead of the real ones on PATH."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "resolv.conf").write_text(RESOLV)
    (tmp / "route").write_text(ROUTES)
    folder = tmp / "bin"
    folder.mkdir(exist_ok=True)
    for name, body in (tools or {}).items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod((folder / name).stat().st_mode | stat.S_IEXEC)
    env = {
        "PATH": f"{folder}:{os.environ['PATH']}",
        "SPACEHUB_RULES_V4": fw.template(p, 4),
        "SPACEHUB_RULES_V6": fw.template(p, 6),
        "SPACEHUB_HOST_IP": NODE[0],
        "SPACEHUB_FIREWALL_SUMMARY": fw.summary(p),
        "SPACEHUB_RESOLV_CONF": str(tmp / "resolv.conf"),
        "SPACEHUB_ROUTES": str(tmp / "route"),
        "SPACEHUB_TERMINATION_LOG": str(tmp / "termination-log"),
        "SPACEHUB_HUB_TRIES": "2",
    }
    if hub_host:
        env["SPACEHUB_HUB_HOST"] = hub_host
    argv = [*wrap, "sh", "-c", fw.PROGRAM + after, "firewall"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def capture(tmp: Path, save: str = ":OUTPUT DROP [0:0]") -> dict[str, str]:
    """Stand-in restore commands that keep what they are given (v4.rules, v6.rules), and save commands."""
    tools = {}
    for family, tool in ((4, "iptables"), (6, "ip6tables")):
        tools[f"{tool}-nft-restore"] = f'cat > "{tmp}/v{family}.rules"'
        tools[f"{tool}-nft-save"] = f"echo '*filter'; echo '{save}'"
    return tools


def test_the_program_fills_in_what_the_pod_knows_exactly_as_render_does(tmp_path: Path) -> None:
    # a literal address as the Hub's host: getent answers it as it is, without a DNS server
    proc = run(tmp_path, BY_NAME, hub_host="192.0.2.77", tools=capture(tmp_path))
    assert proc.returncode == 0, proc.stderr
    # the nameservers, the node's address and the gateway read from the routes, the Hub's addresses
    counts = []
    for family in (4, 6):
        expected = fw.rules(BY_NAME, family, ("10.96.0.10", "fd00:96::a"), (NODE[0], "10.244.3.1"), ("192.0.2.77",))
        assert (tmp_path / f"v{family}.rules").read_text() == expected
        counts.append(sum(line.startswith("-A") for line in expected.splitlines()))
    assert "-A OUTPUT -d 192.0.2.77 -p tcp -m tcp --dport 8000 -j ACCEPT" in (tmp_path / "v4.rules").read_text()
    assert "-A INPUT -s 10.244.3.1 " not in (tmp_path / "v4.rules").read_text()  # the app port is open (by name)
    assert proc.stdout.splitlines() == [
        f"firewall: IPv4: {counts[0]} rules in place (iptables-nft-restore)",
        f"firewall: IPv6: {counts[1]} rules in place (ip6tables-nft-restore)",
        f"firewall: {fw.summary(BY_NAME)}",
    ]
    assert not (tmp_path / "termination-log").exists()


def test_the_program_fails_loudly_when_the_rules_cannot_be_installed(tmp_path: Path) -> None:
    p = Policy(hub_cidrs=HUB_CIDRS, blocked=CLUSTER, app_port=7860)

    def failure(name: str, proc: subprocess.CompletedProcess[str]) -> str:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        message = (tmp_path / name / "termination-log").read_text()
        assert message in proc.stderr  # the log says it too (FallbackToLogsOnError)
        return message

    tools = {**capture(tmp_path / "a"), "iptables-nft-restore": "echo 'iptables-restore: line 7 failed' >&2; exit 2"}
    assert failure("a", run(tmp_path / "a", p, tools=tools)) == (
        "firewall: the IPv4 rules cannot be installed: iptables-restore: line 7 failed"
    )
    # the restore says yes, but the table read back is not the one given
    open_table = capture(tmp_path / "b", save=":OUTPUT ACCEPT [0:0]")
    assert failure("b", run(tmp_path / "b", p, tools=open_table)) == (
        "firewall: the IPv4 rules are not in place after iptables-nft-restore"
    )
    # IPv4 in place, IPv6 refused: the pod does not start either
    tools = {**capture(tmp_path / "c"), "ip6tables-nft-restore": "echo 'no ip6 table' >&2; exit 1"}
    assert failure("c", run(tmp_path / "c", p, tools=tools)).startswith("firewall: the IPv6 rules cannot be")
    # an image without iptables: only the tools the program needs besides it
    bare = tmp_path / "d" / "tools"
    bare.mkdir(parents=True)
    for tool in ("sh", "od", "tr", "grep", "getent", "sleep"):
        (bare / tool).symlink_to(shutil.which(tool) or tool)
    proc = subprocess.run(["sh", "-c", fw.PROGRAM, "firewall"], capture_output=True, text=True, timeout=60, env={
        "PATH": str(bare), "SPACEHUB_RULES_V4": fw.template(p, 4), "SPACEHUB_RULES_V6": fw.template(p, 6),
        "SPACEHUB_TERMINATION_LOG": str(tmp_path / "d" / "termination-log"), "SPACEHUB_ROUTES": "/dev/null",
        "SPACEHUB_RESOLV_CONF": "/dev/null"})  # fmt: skip
    assert failure("d", proc).startswith("firewall: iptables-nft-restore is not in this image")
    # the Hub given by name, and its name does not resolve
    lost = run(tmp_path / "e", BY_NAME, hub_host="no-such-host.invalid", tools=capture(tmp_path / "e"))
    assert "cannot resolve the Hub's host no-such-host.invalid" in failure("e", lost)
    assert not (tmp_path / "e" / "v4.rules").exists()  # nothing was installed half


# ---- the kernel -------------------------------------------------------------------------------------------------
def _kernel_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "a network namespace of its own needs root"
    missing = [t for t in ("unshare", "iptables-nft-restore", "ip6tables-nft-restore") if shutil.which(t) is None]
    return f"missing: {', '.join(missing)}" if missing else None


@pytest.mark.skipif(_kernel_unavailable() is not None, reason=str(_kernel_unavailable()))
@pytest.mark.parametrize("policy", policies()[::5], ids=lambda p: repr(p)[7:80])
def test_the_kernel_takes_every_rule_set_in_a_namespace_of_its_own(tmp_path: Path, policy: Policy) -> None:
    """The real iptables-nft-restore, in a new network namespace (``unshare --net``: nothing of the host's is
    touched), takes each rule set whole; read back with iptables-nft-save it is the rule set given."""
    save = "\necho '--- v4'; iptables-nft-save -t filter; echo '--- v6'; ip6tables-nft-save -t filter"
    proc = run(tmp_path, policy, hub_host="10.0.9.9" if policy.hub_by_name else None, wrap=("unshare", "--net"),
               after=save)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, v4, v6 = proc.stdout.split("--- v")
    hub = ("10.0.9.9",) if policy.hub_by_name else ()
    for family, saved in ((4, v4), (6, v6)):
        got = [line for line in saved.splitlines() if line.startswith(("-A", ":"))]
        want = [line for line in fw.rules(policy, family, ("10.96.0.10", "fd00:96::a"), (NODE[0], "10.244.3.1"), hub)
                .splitlines() if line.startswith(("-A", ":"))]  # fmt: skip
        assert len(got) == len(want) and got[:3] == want[:3], saved
        # the kernel's rules (as iptables-nft-save reads them back) say the same as the ones given
        for address, port in itertools.product(NEVER, (7860, 53)):
            if ipaddress.ip_address(address).version == family:
                packet = Packet("OUTPUT", address, port)
                assert verdict("\n".join(got), packet) == verdict("\n".join(want), packet) == "REJECT"
