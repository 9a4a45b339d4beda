"""`lakeline ui`: serve a read-only web UI of the instance (needs `lakeline[ui]`)."""

from __future__ import annotations

import click

from lakeline.cli.group import use_instance


@click.command("ui")
@click.option(
    "-i",
    "--instance",
    "instance_name",
    metavar="NAME",
    help="Serve instance NAME (as `lakeline --instance NAME ui`); default: the current one.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; any address other than loopback needs --token-file.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option(
    "--token-file",
    metavar="FILE",
    help="A file holding the access token (made, mode 0600, when missing). Visitors open "
    "the printed address once; a cookie keeps them in.",
)
def ui(instance_name: str | None, host: str, port: int, token_file: str | None) -> None:
    """Browse the catalog in a web browser: artifacts, runs, lineage (read-only).

    Serves on http://127.0.0.1:8765 by default and opens nothing by itself. Nothing is sent
    anywhere: the pages are made on this machine from this instance.
    """
    import importlib.util

    from lakeline.cli.group import CommandError

    missing = [m for m in ("starlette", "jinja2", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise CommandError(f"lakeline ui needs {', '.join(missing)}: pip install 'lakeline[ui]'")
    from lakeline.ui.server import create_app, is_loopback, read_token, serve

    if instance_name is not None:
        from lakeline.instance import connect

        instance = connect(instance_name)
    else:
        instance = use_instance()
    token = None
    if token_file is not None:
        token, created = read_token(token_file)
        if created:
            click.echo(f"made a new token in {token_file}", err=True)
    elif not is_loopback(host):
        raise CommandError(
            f"--host {host} serves other machines: give --token-file FILE (a token is made "
            "there when the file does not exist)"
        )
    app = create_app(instance.name, token=token, host=host)
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "<this machine's address>"
    address = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"lakeline ui: instance {instance.name} on {address}  (Ctrl-C to stop)", err=True)
    serve(app, host, port)


COMMANDS = (ui,)
