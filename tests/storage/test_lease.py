"""`storage.lease.Lease` on SQLite and PostgreSQL: one holder at a time; renewing keeps it; a release or the end of
its term lets another take it (and the old holder then cannot renew); a holder on this machine whose process is gone
frees it at once; many processes racing for a free lease, exactly one wins."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from spacehub.services.context import HubContext
from spacehub.storage.lease import Lease, holder_id


def test_one_holder_renewal_release_and_expiry(ctx: HubContext) -> None:
    a, b = Lease(ctx.db, "runtime", "host-a:1:x", 30), Lease(ctx.db, "runtime", "host-b:1:y", 30)
    assert a.acquire() and not b.acquire()
    first = a.current()
    assert first is not None and first.holder == "host-a:1:x"
    assert a.renew() and not b.acquire()
    now = a.current()
    assert now is not None and now.expires_at >= first.expires_at
    a.release()
    assert a.current() is None
    assert b.acquire() and not a.acquire()
    b.release()
    short = Lease(ctx.db, "runtime", "host-a:1:x", 0.3)
    assert short.acquire() and not b.acquire()
    time.sleep(0.5)  # its term ends: free for the next
    assert short.current() is None
    assert b.acquire() and not short.renew()  # the old holder cannot renew what another holds
    assert Lease(ctx.db, "other", "host-a:1:x", 30).acquire()  # leases of other names are apart


def test_a_dead_holder_on_this_machine_frees_the_lease_at_once(ctx: HubContext) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid names no process now
    dead = Lease(ctx.db, "runtime", f"{socket.gethostname()}:{gone.pid}:dead", 3600)
    assert dead.acquire()
    alive = Lease(ctx.db, "runtime", holder_id(), 3600)  # this process: alive
    assert alive.acquire()
    assert not dead.acquire() and not Lease(ctx.db, "runtime", "elsewhere:1:z", 3600).acquire()
    remote = Lease(ctx.db, "r2", "some-other-host:999999:z", 3600)  # another machine's process: not ours to judge
    assert remote.acquire() and not Lease(ctx.db, "r2", holder_id(), 3600).acquire()


def test_racing_for_a_free_lease_one_wins(ctx: HubContext) -> None:
    leases = [Lease(ctx.db, "runtime", f"elsewhere:{i}:r", 60) for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda lease: lease.acquire(), leases))
    assert won.count(True) == 1
    holder = leases[0].current()
    assert holder is not None and holder.holder == leases[won.index(True)].holder
