"""``python -m serving``: validate the environment, then serve with uvicorn.

uvicorn handles SIGTERM gracefully: it stops accepting connections and lets in-flight requests finish
(up to ``SHUTDOWN_GRACE_SECONDS``). The keep-alive timeout (75 s) is longer than the ALB's default idle
timeout (60 s) so the server never closes a connection the ALB is about to reuse (a 502).
"""

from __future__ import annotations

import logging
import os
import sys

KEEP_ALIVE_SECONDS = 75


def main() -> int:
    from serving.app import ConfigError, Settings, create_app

    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"serving: configuration error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        proxy_headers=True,
        forwarded_allow_ips="*",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
