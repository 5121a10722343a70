"""Run a command module under cProfile and write the stats when SIGTERM or SIGINT arrives.

`python -m bench.profiled OUT.prof MODULE ARGS…`. Profiling is off until SIGUSR1 and off
again after SIGUSR2, so a bench profiles the phases it means (not the set-up). The
messenger's `serve` re-raises the stopping signal after uvicorn's shutdown, which would end
the process before cProfile writes; the handler installed here is the one re-raised into,
so it writes the stats and exits. `medbridge messenger serve` replaces its process with a
fresh interpreter (messenger.server.serve) before serving; under the profiler it serves in
this process instead, or the profiler (and its signal handlers) would be gone.
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
from types import FrameType
from typing import NoReturn


def main() -> None:
    out, module, *args = sys.argv[1:]
    profiler = cProfile.Profile()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, lambda _s, _f: profiler.enable())
    signal.signal(signal.SIGUSR2, lambda _s, _f: profiler.disable())
    from messenger.server import serve

    def serve_here(options: serve.ServeOptions) -> NoReturn:
        sys.exit(serve.serve(options))

    serve.exec_serving = serve_here
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
