"""The ``spacehub`` command: serve, and admin commands that work on the data folder (also while the server runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spacehub.config import Settings
from spacehub.errors import HubError

app = typer.Typer(help="SpaceHub: a self-hosted home for Hugging Face-style Spaces.", no_args_is_help=True)
users = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens = typer.Typer(help="Manage access tokens.", no_args_is_help=True)
orgs = typer.Typer(help="Manage organizations.", no_args_is_help=True)
app.add_typer(users, name="users")
app.add_typer(tokens, name="tokens")
app.add_typer(orgs, name="orgs")
secrets_cli = typer.Typer(help="Manage the key that encrypts Space secrets.", no_args_is_help=True)
app.add_typer(secrets_cli, name="secrets")
billing_cli = typer.Typer(help="Who may use paid hardware (a payment card or a community grant).", no_args_is_help=True)
app.add_typer(billing_cli, name="billing")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (default: SPACEHUB_DATA_DIR or ./data)")]


def _settings(data_dir: Path | None, **overrides: object) -> Settings:
    kwargs: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    return Settings(**kwargs)  # type: ignore[arg-type]


def _run_admin(data_dir: Path | None, fn):  # type: ignore[no-untyped-def]
    from spacehub.storage.db import Database, upgrade_schema

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_schema(settings.database_url)
    db = Database(settings.database_url)
    try:
        with db.transaction() as s:
            return fn(s)
    except HubError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000)")] = None,
    data_dir: DataDir = None,
    workers: Annotated[
        int | None, typer.Option(help="HTTP worker processes beside the runtime's controller (default 1: one process)")
    ] = None,
    worker_fd: Annotated[int | None, typer.Option(hidden=True, help="(internal) serve as an HTTP worker")] = None,
) -> None:
    """Start the server with embedded defaults (SQLite and local folders under the data dir)."""
    from spacehub.serving import serve as run

    settings = _settings(data_dir, host=host, port=port)
    if workers is not None:
        settings.server.workers = workers
    if worker_fd is None:
        typer.echo(f"SpaceHub on http://{settings.server.host}:{settings.server.port} (data: {settings.data_dir})")
    try:
        run(settings, worker_fd)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@users.command("create")
def users_create(
    name: str,
    data_dir: DataDir = None,
    fullname: Annotated[str, typer.Option(help="Display name")] = "",
    email: Annotated[str | None, typer.Option(help="E-mail address")] = None,
    admin: Annotated[bool, typer.Option(help="Site administrator")] = False,
    password: Annotated[bool, typer.Option("--password", help="Set a password for web sign-in (prompted)")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Create a user (with a password for the web pages when asked)."""
    from spacehub.services import accounts, sessions

    secret = _read_password(password, password_stdin)

    def create(s):  # type: ignore[no-untyped-def]
        accounts.create_user(s, name, fullname, email, admin)
        if secret is not None:
            sessions.set_password(s, name, secret)

    _run_admin(data_dir, create)
    typer.echo(f"created user {name}" + (" (with a password)" if secret is not None else ""))


@users.command("set-password")
def users_set_password(
    name: str,
    data_dir: DataDir = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Set (or change) the web sign-in password of user NAME (prompted unless --password-stdin)."""
    from spacehub.services import sessions

    secret = _read_password(True, password_stdin)
    assert secret is not None
    _run_admin(data_dir, lambda s: sessions.set_password(s, name, secret))
    typer.echo(f"password set for {name}")


def _read_password(prompt: bool, stdin: bool) -> str | None:
    """The password from stdin (its first line) or a hidden prompt with confirmation; None when none was asked."""
    import sys

    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if prompt:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return None


@tokens.command("create")
def tokens_create(
    name: str,
    data_dir: DataDir = None,
    role: Annotated[str, typer.Option(help="read or write")] = "write",
    token_name: Annotated[str, typer.Option("--token-name", help="A label for the token")] = "cli",
) -> None:
    """Create an access token for user NAME; the token is the last line printed."""
    from spacehub.services import accounts

    value = _run_admin(data_dir, lambda s: accounts.create_token(s, name, role, token_name))
    typer.echo(f"token for {name} ({role}):")
    typer.echo(value)


@orgs.command("create")
def orgs_create(name: str, data_dir: DataDir = None, fullname: str = "") -> None:
    """Create an organization."""
    from spacehub.services import accounts

    _run_admin(data_dir, lambda s: accounts.create_org(s, name, fullname))
    typer.echo(f"created organization {name}")


@orgs.command("add-member")
def orgs_add_member(
    org: str,
    user: str,
    data_dir: DataDir = None,
    role: Annotated[str, typer.Option(help="read, write or admin")] = "write",
) -> None:
    """Add USER to ORG with a role (or change their role)."""
    from spacehub.services import accounts

    _run_admin(data_dir, lambda s: accounts.add_member(s, org, user, role))
    typer.echo(f"{user} is now {role} in {org}")


@secrets_cli.command("rotate-key")
def secrets_rotate_key(data_dir: DataDir = None) -> None:
    """Re-encrypt every Space secret under a new key and retire the old one (the server may keep running)."""
    from spacehub.services.crypto import SecretKeyError, key_path, rotate_key
    from spacehub.storage.db import Database, upgrade_schema

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_schema(settings.database_url)
    try:
        key_id, count = rotate_key(Database(settings.database_url), key_path(settings.data_dir))
    except SecretKeyError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"re-encrypted {count} secrets under the new key {key_id}; the old key is gone")


@billing_cli.command("grant")
def billing_grant(
    owner: str,
    data_dir: DataDir = None,
    card: Annotated[bool, typer.Option(help="A payment card on file rather than a community grant")] = False,
    note: Annotated[str, typer.Option(help="Why (shown by `billing list`)")] = "",
) -> None:
    """Let OWNER (a user or an org) use paid hardware."""
    from spacehub.services import billing

    kind = "card" if card else "grant"
    _run_admin(data_dir, lambda s: billing.grant(s, owner, kind, note))
    typer.echo(f"{owner} may use paid hardware ({kind})")


@billing_cli.command("revoke")
def billing_revoke(
    owner: str,
    data_dir: DataDir = None,
    downgrade: Annotated[bool, typer.Option(help="Also move OWNER's Spaces on paid hardware to the default")] = False,
) -> None:
    """Take paid hardware away from OWNER. Their Spaces on it keep running (and metered) unless --downgrade."""
    from spacehub.flavors import DEFAULT_FLAVOR, Catalog
    from spacehub.services import accounts, billing, spaces

    catalog = Catalog.load(_settings(data_dir).runtime.flavors_file)

    def run(s):  # type: ignore[no-untyped-def]
        had = billing.revoke(s, owner)
        account = accounts.get_account(s, owner)
        paid = billing.paid_spaces(s, account, catalog) if account is not None else []
        for repo in paid if downgrade else []:
            row = spaces.space_row(s, repo)
            row.hardware, row.sleep_time = DEFAULT_FLAVOR, None  # the runtime restarts it at its next pass
        return had, [r.full_name for r in paid]

    had, paid = _run_admin(data_dir, run)
    typer.echo(f"{owner} may no longer use paid hardware" if had else f"{owner} had no billing account")
    for name in paid:
        typer.echo(f"  {name}: {'moved to ' + DEFAULT_FLAVOR if downgrade else 'still on paid hardware'}")


@billing_cli.command("list")
def billing_list(data_dir: DataDir = None) -> None:
    """Owners that may use paid hardware."""
    from spacehub.services import billing

    for owner, kind, note in _run_admin(data_dir, billing.billing_accounts):
        typer.echo(f"{owner}\t{kind}\t{note}")


@app.command()
def usage(
    data_dir: DataDir = None,
    owner: Annotated[str | None, typer.Option(help="Only this user or org")] = None,
) -> None:
    """Metered paid-hardware usage per owner and Space: minutes and cost."""
    from spacehub.services import billing

    def run(s):  # type: ignore[no-untyped-def]
        ids = None
        if owner is not None:
            account = billing.find_owner(s, owner)
            ids = [account.id]
        return billing.summarize(billing.usage_lines(s, ids))

    rows = _run_admin(data_dir, run)
    typer.echo(f"{'owner / space':<48} {'flavor':<14} {'minutes':>8} {'cost USD':>10}")
    for o in rows:
        typer.echo(f"{o['owner']:<48} {'':<14} {o['minutes']:>8} {o['costUSD']:>10.4f}")
        for sp in o["spaces"]:
            typer.echo(f"  {sp['space']:<46} {sp['flavor']:<14} {sp['minutes']:>8} {sp['costUSD']:>10.4f}")


def main() -> None:
    app()
