"""The serving process of `medbridge messenger serve`, apart from the command line.

The command line parses its options, then replaces itself (same PID) with a fresh interpreter
running this module: the command framework and every other command's module would otherwise
stay in the server's memory for its whole life. The options travel in an inherited pipe, not
in the argument list or the environment, since they may carry the metrics token or an SMTP
password.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from messenger.server.config import UVICORN_OPTIONS, ServerSettings

#: ServerSettings fields a serve command may set; paths travel as strings.
PATH_FIELDS = frozenset({"blob_dir", "metadata_key_file"})


@dataclasses.dataclass
class ServeOptions:
    """Where to listen, how to log, and the server's settings (plain values only)."""

    settings: dict[str, Any]
    host: str = "127.0.0.1"
    port: int = 8470
    log_level: str = "info"
    log_json: bool = False

    def server_settings(self) -> ServerSettings:
        known = {f.name for f in dataclasses.fields(ServerSettings)}
        unknown = set(self.settings) - known
        if unknown:
            raise ValueError(f"not server settings: {sorted(unknown)}")
        values: dict[str, Any] = {
            k: Path(v) if k in PATH_FIELDS and v is not None else v
            for k, v in self.settings.items()
        }
        return ServerSettings(**values)


def exec_serving(options: ServeOptions) -> NoReturn:
    """Replace this process by an interpreter that runs `serve(options)`; does not return.

    The new interpreter finds this very `messenger` package (not whatever the working
    directory holds: `-P`), and keeps this one's interpreter flags.
    """
    import subprocess

    data = json.dumps(dataclasses.asdict(options)).encode()
    if len(data) > 60_000:  # a pipe holds 64 KiB before a writer blocks, and nobody reads yet
        raise ValueError("serve options too large")
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # This interpreter's -X, -W, -O … options, as multiprocessing passes them to its children.
    flags: list[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    argv = [sys.executable, *flags, "-P", "-m", __name__, "--options-fd", str(read_end)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)  # noqa: S606 - this process becomes the server


def read_options(fd: int) -> ServeOptions:
    with os.fdopen(fd, "rb") as pipe:
        raw = json.loads(pipe.read())
    return ServeOptions(**raw)


def serve(options: ServeOptions) -> int:
    """Check the schema (a newer one is one clear line, exit 1), then serve until stopped."""
    import uvicorn

    from messenger.server.app import create_app
    from messenger.server.logs import configure
    from messenger.store import schema
    from messenger.store.engine import make_engine

    configure(options.log_level, options.log_json)
    settings = options.server_settings()

    async def check() -> None:
        engine = make_engine(settings.database_url, settings.db_schema)
        try:
            await schema.check(engine)
        finally:
            await engine.dispose()

    # Before uvicorn starts, so that a newer database gives one line, not a failed lifespan.
    try:
        asyncio.run(check())
    except schema.SchemaError as exc:
        print(f"medbridge: {exc}", file=sys.stderr)
        return 1
    app = create_app(settings)
    # What exists now (modules, the app, its routes and models) lives as long as the process.
    # Frozen, the collector stops walking it: a full collection stalled every stream for as
    # long as it took (bench_messenger at 1 msg/s, one run each, pauses timed with
    # gc.callbacks: longest 1,264 ms before, 98 ms frozen; longest delivery 1,228 → 112 ms).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=options.host,
        port=options.port,
        log_level=options.log_level.lower(),
        log_config=None,  # keep our handler (and its format) for uvicorn's loggers too
        proxy_headers=False,  # the app decides whom to believe (trusted_proxies)
        **UVICORN_OPTIONS,  # type: ignore[arg-type]
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "--options-fd":
        print("usage: python -m messenger.server.serve --options-fd N", file=sys.stderr)
        return 2
    return serve(read_options(int(args[1])))


if __name__ == "__main__":
    sys.exit(main())
