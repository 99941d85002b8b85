"""A Space's pod holds itself in, whatever the cluster's network plugin: its NetworkPolicy's rules as netfilter rules
in the pod's own network namespace, installed by the pod's first init container before anything of the Space runs.

Why. A NetworkPolicy is a wish until the cluster's CNI plugin enforces it, and many plugins do not (the bridge
plugin, flannel, kubenet; the test cluster's pod tier), so on such a cluster a Space could reach another Space's pod
and the node's own services. Istio's ``istio-init`` settled how a pod can hold itself in: an init container with
``NET_ADMIN`` writes iptables rules into the pod's network namespace, which the pod's other containers (every
capability dropped) cannot change, and which apply to every container of the pod, init containers included. Here
those rules carry the NetworkPolicy's promises, so they hold with any plugin; where the plugin enforces policies
too, they are a second, independent wall (defense in depth). The price: a container that runs as root with
``NET_ADMIN``, which the Pod Security "restricted" profile refuses (``kubernetes.pod_firewall`` off: the policy
alone, on a plugin that enforces it).

What the rules say, per role of the pod (``Policy``):

- out: loopback and replies (ESTABLISHED, RELATED); DNS (udp and tcp 53) to the pod's nameservers; the Hub (its
  CIDRs, and when it is given by pod labels the addresses its URL resolves to, on its ports when set); then every
  private address is refused (RFC 1918, link-local with the cloud's metadata service, CGNAT, loopback, multicast
  and the reserved ranges, the cluster's own ranges, the node's addresses): no other Space, no node service; then
  public addresses when the Space may reach the internet (a build always may: its ``pip install``), else nothing.
  Refusals are ``REJECT`` with "administratively prohibited": a connection fails at once with EHOSTUNREACH ("No
  route to host"), which tells a refusal by these rules apart from a port where nothing listens;
- in: loopback and replies; the app port from the Hub's CIDRs and from the node (kubelet's probes; the node is
  ``status.hostIP`` and, on a bridge network, the pod's gateway, the node's address on the bridge, which is where the
  node's connections to the pod come from); with the Hub given by pod labels (its addresses change) the app port
  from anywhere: every Space's own rules already refuse to reach another pod. Everything else is dropped. A build
  or a task has no port: nothing comes in.
- IPv6 the same way (the NetworkPolicy's ``::/0`` minus ULA, link-local, loopback and the cluster's IPv6 ranges),
  plus neighbour discovery, without which no IPv6 packet leaves the link. A pod whose kernel has no IPv6 has nothing
  to filter there; one that has IPv6 gets its rules or does not start.

How: ``template(policy, family)`` is the iptables-restore text with three placeholders for what only the pod knows,
``@NAMESERVER@`` (``/etc/resolv.conf``), ``@NODE@`` (``status.hostIP`` from the downward API, and the default
gateway from ``/proc/net/route``) and ``@HUB@`` (``getent ahosts`` of the Hub's host); a rule line that holds one
is written once per address of its family, and not at all when there is none. ``PROGRAM`` (POSIX sh) fills them in
and hands the text to ``iptables-nft-restore`` (``ip6tables-nft-restore``), which replaces the filter table in one
transaction: the rules are all in place or none is. It reads the policies back, and when anything fails it exits
non-zero with the reason as its termination message, so the pod does not start and the Space's stage and
errorMessage say why (health.py): a pod is never left open. ``render`` is the same filling in Python, for tests.

Only the nf_tables backend: it needs ``NET_ADMIN`` alone (iptables-legacy would need ``NET_RAW`` too, for its raw
socket) and no lock file, and the namespace is the pod's own, so nothing else's rules live there to be mixed with.
Every kernel Kubernetes supports has nf_tables (3.13+). The image (``kubernetes.firewall_image``) needs sh, getent
and iptables-nft-restore: Kubernetes' own ``debian-iptables`` image has them (``FIREWALL_IMAGE``); the test tier
builds an image of that name offline (``scripts/build-firewall-image``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# The image the firewall init container runs by default: Kubernetes' own Debian image with iptables (sh, getent,
# iptables-nft-restore and ip6tables-nft-restore), built and published by the Kubernetes project.
FIREWALL_IMAGE = "registry.k8s.io/build-image/debian-iptables:bookworm-v1.0.0"

# The placeholders of a template: what only the pod knows, filled in by PROGRAM (and `render`).
NAMESERVER, NODE, HUB = "@NAMESERVER@", "@NODE@", "@HUB@"

# Where a Space may never go, even when it may reach the internet: the NetworkPolicy's ranges (manifests.PRIVATE_V4,
# PRIVATE_V6: private, link-local with 169.254.169.254, CGNAT, loopback, ULA) and what is never one host of the
# internet: "this network", multicast, the reserved block with the broadcast address (255.255.255.255 reaches every
# pod on the bridge), IPv6 multicast (ff02::1 is every node on the link) and the NAT64 prefixes (64:ff9b::10.0.0.1 is
# 10.0.0.1 behind a NAT64 gateway).
NOT_PUBLIC_V4 = (
    *("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"),
    *("0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"),
)
NOT_PUBLIC_V6 = ("fc00::/7", "fe80::/10", "::1/128", "::/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48",
                 "ff00::/8")  # fmt: skip
# Neighbour discovery (router solicitation and advertisement, neighbour solicitation and advertisement): link-local
# signalling without which IPv6 reaches nothing, not even the Hub or the DNS server.
NDP_TYPES = (133, 134, 135, 136)

Role = Literal["app", "task", "build"]


@dataclass(frozen=True)
class Policy:
    """What one pod may do on the network (see the module's docstring)."""

    hub_cidrs: tuple[str, ...] = ()  # the Hub's addresses
    hub_by_name: bool = False  # the Hub is given by pod labels: its addresses are what its host resolves to, in the pod
    hub_ports: tuple[int, ...] = ()  # the Hub's ports a pod may reach (TCP); empty: any port and protocol
    internet: bool = False  # public addresses out
    blocked: tuple[str, ...] = ()  # the cluster's own ranges (kubernetes.cluster_cidrs), never reached
    app_port: int | None = None  # the port that takes connections; None: nothing comes in (a build, a task)
    app_port_open: bool = False  # the app port from anywhere (the Hub's addresses are not known in advance)

    def __post_init__(self) -> None:
        for port in (*self.hub_ports, *([self.app_port] if self.app_port is not None else [])):
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is out of range")
        for cidr in (*self.hub_cidrs, *self.blocked):  # an address or CIDR, never anything else in a rule line
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an address or CIDR") from None


def _family(address: str) -> int:
    return 6 if ":" in address else 4


def template(p: Policy, family: int) -> str:
    """The iptables-restore text of ``p`` for IPv4 or IPv6 (``family`` 4 or 6), with the placeholders."""
    if family not in (4, 6):
        raise ValueError("family is 4 or 6")
    v6 = family == 6
    mine = [c for c in p.hub_cidrs if _family(c) == family]
    reject = "REJECT --reject-with " + ("icmp6-adm-prohibited" if v6 else "icmp-admin-prohibited")
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]"]
    # ---- in: loopback, replies, (IPv6) neighbour discovery, then the app port from the Hub and the node
    lines += ["-A INPUT -i lo -j ACCEPT", "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    if v6:
        lines += [f"-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT" for t in NDP_TYPES]
    if p.app_port is not None:
        port = f"-p tcp -m tcp --dport {p.app_port}"
        if p.app_port_open:
            lines.append(f"-A INPUT {port} -j ACCEPT")
        else:
            lines += [f"-A INPUT -s {c} {port} -j ACCEPT" for c in mine]
            lines.append(f"-A INPUT -s {NODE} {port} -j ACCEPT")
    # ---- out: loopback, replies, (IPv6) neighbour discovery, DNS, the Hub; then no private address; the internet
    lines += ["-A OUTPUT -o lo -j ACCEPT", "-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    if v6:
        lines += [f"-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT" for t in NDP_TYPES]
    lines += [f"-A OUTPUT -d {NAMESERVER} -p {proto} -m {proto} --dport 53 -j ACCEPT" for proto in ("udp", "tcp")]
    for dest in [*mine, *([HUB] if p.hub_by_name else [])]:
        if p.hub_ports:
            lines += [f"-A OUTPUT -d {dest} -p tcp -m tcp --dport {port} -j ACCEPT" for port in p.hub_ports]
        else:
            lines.append(f"-A OUTPUT -d {dest} -j ACCEPT")
    lines.append(f"-A OUTPUT -d {NODE} -j {reject}")
    blocked = [c for c in p.blocked if _family(c) == family]
    lines += [f"-A OUTPUT -d {c} -j {reject}" for c in (*(NOT_PUBLIC_V6 if v6 else NOT_PUBLIC_V4), *blocked)]
    if p.internet:
        lines.append("-A OUTPUT -j ACCEPT")
    lines += [f"-A OUTPUT -j {reject}", "COMMIT"]
    return "\n".join(lines) + "\n"


def render(text: str, family: int, nameservers: Sequence[str] = (), node: Sequence[str] = (),
           hub: Sequence[str] = ()) -> str:  # fmt: skip
    """``text`` (a template) with its placeholders filled in as PROGRAM fills them: each line that holds one is
    written once per address of ``family`` among the values, in their order, and not at all when there is none."""
    values = {NAMESERVER: nameservers, NODE: node, HUB: hub}
    out: list[str] = []
    for line in text.splitlines():
        mark = next((m for m in values if m in line), None)
        if mark is None:
            out.append(line)
            continue
        out += [line.replace(mark, a) for a in dict.fromkeys(values[mark]) if _family(a) == family]
    return "\n".join(out) + "\n"


def rules(p: Policy, family: int, nameservers: Sequence[str] = (), node: Sequence[str] = (),
          hub: Sequence[str] = ()) -> str:  # fmt: skip
    """The iptables-restore text a pod with ``p`` installs, given what it finds: its nameservers, the node's
    addresses (host IP, gateway) and the Hub's addresses."""
    return render(template(p, family), family, nameservers, node, hub)


def summary(p: Policy) -> str:
    """One line for the pod's log: what the rules let through (no address in it: the log is the Space owner's)."""
    if p.app_port is None:
        inbound = "nothing"
    elif p.app_port_open:
        inbound = f"port {p.app_port} from anywhere (every Space's own rules keep it from other pods)"
    else:
        inbound = f"port {p.app_port} from the Hub and the node"
    internet = "public addresses" if p.internet else "nothing else"
    return f"in: {inbound}; out: DNS, the Hub, no private address, {internet}"


# The init container's program (POSIX sh, run as ``sh -c PROGRAM firewall``). Its inputs, from the environment:
# SPACEHUB_RULES_V4 and SPACEHUB_RULES_V6 (the templates), SPACEHUB_HOST_IP (status.hostIP), SPACEHUB_HUB_HOST (the
# Hub's host, when its addresses are found by name: tried for 10 s, as the pod's DNS may lag its start),
# SPACEHUB_FIREWALL_SUMMARY (a line for the log); the paths SPACEHUB_RESOLV_CONF, SPACEHUB_ROUTES and
# SPACEHUB_TERMINATION_LOG, and SPACEHUB_HUB_TRIES, are the pod's unless a test gives its own.
# Addresses found are checked to be addresses (hex digits, dots, colons) before they go into a rule.
PROGRAM = r"""
say() { printf 'firewall: %s\n' "$*"; }
die() {
  printf 'firewall: %s\n' "$*" >&2
  printf 'firewall: %s' "$*" > "${SPACEHUB_TERMINATION_LOG:-/dev/termination-log}" 2>/dev/null
  exit 1
}
is_address() { case $1 in *[!0-9A-Fa-f:.]* | '') return 1 ;; *[.:]*) return 0 ;; *) return 1 ;; esac; }
family() { case $1 in *:*) echo 6 ;; *) echo 4 ;; esac; }
with() { case " $1 " in *" $2 "*) printf '%s' "$1" ;; *) printf '%s' "${1:+$1 }$2" ;; esac; }

# the pod's nameservers
nameservers=
while read -r key value _; do
  if [ "$key" = nameserver ] && is_address "$value"; then nameservers=$(with "$nameservers" "$value"); fi
done < "${SPACEHUB_RESOLV_CONF:-/etc/resolv.conf}"

# the node: its address (status.hostIP), and the pod's default gateway (the node's address on a bridge network);
# /proc/net/route writes the gateway as a hex number in the machine's byte order
node=
if is_address "${SPACEHUB_HOST_IP:-}"; then node=$SPACEHUB_HOST_IP; fi
little=$(printf '\001\000' | od -An -tu2 | tr -d ' \n')
while read -r _ dest gw _; do
  case $gw in *[!0-9A-Fa-f]* | '') continue ;; esac
  if [ "$dest" = 00000000 ] && [ "$gw" != 00000000 ] && [ ${#gw} = 8 ]; then
    a=${gw%??????}; r=${gw#??}; b=${r%????}; r=${gw#????}; c=${r%??}; d=${gw#??????}
    if [ "$little" = 1 ]; then set -- "$d" "$c" "$b" "$a"; else set -- "$a" "$b" "$c" "$d"; fi
    node=$(with "$node" "$(printf '%d.%d.%d.%d' "0x$1" "0x$2" "0x$3" "0x$4")")
  fi
done < "${SPACEHUB_ROUTES:-/proc/net/route}"

# the Hub's addresses, when the Hub is found by name (it runs in the cluster: its addresses are not fixed)
hub=
if [ -n "${SPACEHUB_HUB_HOST:-}" ]; then
  tries=0
  until found=$(getent ahosts "$SPACEHUB_HUB_HOST") && [ -n "$found" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt "${SPACEHUB_HUB_TRIES:-10}" ] \
      || die "cannot resolve the Hub's host $SPACEHUB_HUB_HOST, so it cannot be let through"
    sleep 1
  done
  for a in $(printf '%s\n' "$found" | while read -r a _; do printf '%s\n' "$a"; done); do
    if is_address "$a"; then hub=$(with "$hub" "$a"); fi
  done
  [ -n "$hub" ] || die "the Hub's host $SPACEHUB_HUB_HOST resolves to no address"
fi

# each line with a placeholder once per address of the family (none: the line goes)
expand() {
  printf '%s\n' "$1" | while IFS= read -r line; do
    case $line in
      *@NAMESERVER@*) values=$nameservers ;;
      *@NODE@*) values=$node ;;
      *@HUB@*) values=$hub ;;
      *) printf '%s\n' "$line"; continue ;;
    esac
    for v in $values; do
      if [ "$(family "$v")" = "$2" ]; then printf '%s\n' "${line%%@*}$v${line#*@*@}"; fi
    done
  done
}

install() {
  restore=iptables-nft-restore
  if [ "$1" = 6 ]; then restore=ip6tables-nft-restore; fi
  command -v "$restore" > /dev/null 2>&1 \
    || die "$restore is not in this image: kubernetes.firewall_image must have iptables with nf_tables"
  [ -n "$2" ] || die "no IPv$1 rules were given"
  text=$(expand "$2" "$1")
  if ! out=$(printf '%s\n' "$text" | "$restore" 2>&1); then die "the IPv$1 rules cannot be installed: $out"; fi
  "${restore%-restore}-save" -t filter 2> /dev/null | grep -q '^:OUTPUT DROP' \
    || die "the IPv$1 rules are not in place after $restore"
  say "IPv$1: $(printf '%s\n' "$text" | grep -c '^-A') rules in place ($restore)"
}

install 4 "${SPACEHUB_RULES_V4:-}"
if [ -e /proc/net/if_inet6 ]; then
  install 6 "${SPACEHUB_RULES_V6:-}"
else
  say "IPv6: not in this kernel, nothing to filter"
fi
say "${SPACEHUB_FIREWALL_SUMMARY:-}"
"""
