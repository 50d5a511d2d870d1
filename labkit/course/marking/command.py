"""``labkit mark``: mark the written answers of a class course by question, in the browser.

    labkit mark COURSE                  # 127.0.0.1, a free port; prints the address with its token
    labkit mark COURSE --port 8765      # a port of your choice
    labkit mark COURSE --host 0.0.0.0   # reachable from other machines (the token still guards it)

COURSE is the class course that ``labkit autograde --keep COURSE`` wrote. Marks are saved at once
into its gradebook (``labkit autograde --from-course COURSE`` then writes them into grades.csv)
and into ``COURSE/labkit-marks.json`` (the rubric items applied). Stop the server with Ctrl+C.

Owns: :func:`register` and :func:`run`.
"""
from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    import tornado.ioloop

    from labkit.course.marking.server import serve

    server, url = serve(Path(args.course), host=args.host, port=args.port)
    print(f"labkit mark: marking {Path(args.course).resolve()}\nopen {url}\n(Ctrl+C stops the server)", flush=True)
    try:
        tornado.ioloop.IOLoop.current().start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def register(subparsers) -> None:
    from labkit.cli import add_command

    p = add_command(subparsers, "mark", help="mark the written answers by question in a local web page", doc=__doc__)
    p.add_argument("course", metavar="COURSE", help="the class course that `labkit autograde --keep` wrote")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.set_defaults(func=run)
