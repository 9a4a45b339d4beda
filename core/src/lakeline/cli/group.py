"""The `lakeline` click group: plugin commands loaded on first use, errors as one clear line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import click

from lakeline.errors import LakelineError

if TYPE_CHECKING:
    from lakeline.instance import Instance

# Errors a user can act on: shown as `error: <message>` (exit 1) instead of a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (LakelineError, FileNotFoundError, PermissionError)


def debug() -> bool:
    """Whether `LAKELINE_DEBUG` asks for tracebacks instead of one-line errors."""
    return os.environ.get("LAKELINE_DEBUG", "").strip().lower() in ("1", "true", "yes")


class CommandError(click.ClickException):
    """A deliberate error, printed in red as `error: <message>`; exit code 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.secho(f"error: {self.format_message()}", err=file is None, file=file, fg="red")


def describe_error(exc: BaseException) -> str:
    """A one-line message for a user error."""
    if isinstance(exc, OSError) and not isinstance(exc, LakelineError) and exc.filename:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    message = str(exc).strip() or type(exc).__name__
    return " ".join(message.split())


@dataclass
class State:
    """Options of the group that commands read: which instance to use."""

    instance: str | None = None


class LakelineGroup(click.Group):
    """A click group that asks plugins for commands (once) and turns user errors into one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugins_loaded: int | None = None  # plugins.generation() the commands came from

    def load_plugin_commands(self) -> None:
        """Call the `register_commands` hook of every plugin, once per group and per load of
        the plugins (`lakeline.plugins.reset()` makes the next call ask them again)."""
        from lakeline import plugins

        if self._plugins_loaded == plugins.generation():
            return
        self._plugins_loaded = plugins.generation()
        try:
            plugins.get_plugin_manager(commands=True).hook.register_commands(cli=self)
        except Exception as exc:  # a broken plugin must not take the whole CLI down
            if debug():
                raise
            click.secho(
                f"warning: plugin commands not loaded: {type(exc).__name__}: {exc}",
                err=True,
                fg="yellow",
            )

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.load_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        show_migration_progress()
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            if debug():
                raise
            raise CommandError(describe_error(exc)) from exc
        except Exception as exc:
            message = database_error(exc)
            if message is None or debug():
                raise
            raise CommandError(message) from exc


def show_migration_progress() -> None:
    """Lines a migration logs (`lakeline.migrate`: a long SQLite rebuild, table by table) on
    stderr, for `lakeline migrate` and the self-migration on connect alike (once a process)."""
    import logging  # here: `lakeline --help` does not import it

    logger = logging.getLogger("lakeline.migrate")
    if any(h.get_name() == "lakeline-cli" for h in logger.handlers):
        return

    class Echo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            click.echo(self.format(record), err=True)

    handler = Echo(logging.INFO)
    handler.set_name("lakeline-cli")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def database_error(exc: BaseException) -> str | None:
    """One line for a driver error lakeline has no better word for (db/errors.py translates
    those it knows); None for anything else. SQLAlchemy is not imported for this."""
    import sys

    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.DBAPIError):
        return None
    reason = str(exc.orig or exc).strip().splitlines()
    return f"database error: {reason[0] if reason else type(exc).__name__}"


def use_instance() -> Instance:
    """The instance a command works on: `--instance NAME`, else the current one."""
    from lakeline.config import current_name
    from lakeline.instance import connect, current

    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(State) if ctx is not None else None
    if state is not None and state.instance:
        return connect(state.instance)
    instance = current()
    name = current_name()
    if name and instance.name != name:  # another instance was connected in this process
        instance = connect(name)
    return instance
