"""Run the fake Anthropic API as its own process: `python -m tests.fake_anthropic --port 0 --config JSON`.

Prints the base URL as the first stdout line, then serves until SIGTERM/SIGINT. Tests that SIGKILL
the client keep the server (and its request log, at GET /_fake/log) alive.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .server import FakeAnthropic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_anthropic", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--config", default="{}", help="JSON object of config keys, or @path to a JSON file")
    args = parser.parse_args(argv)
    text = Path(args.config[1:]).read_text() if args.config.startswith("@") else args.config
    config = json.loads(text or "{}")

    fake = FakeAnthropic(host=args.host, port=args.port, **config)
    fake.start()

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(fake.base_url, flush=True)
    try:
        signal.pause() if hasattr(signal, "pause") else fake._thread.join()  # type: ignore[union-attr]
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
