"""The marking server: tornado (which Jupyter ships), on 127.0.0.1 unless told otherwise.

Owns: :func:`make_app` (the routes) and :func:`serve` (listening, the address with its token).

Every request, the static files included, needs the secret token: given once in the address
(``?token=...``) it becomes an HttpOnly, SameSite=Strict cookie and the address is reloaded without
it; anything else gets 403. POSTs carry tornado's XSRF token. Every page sets :data:`page.CSP`
(its own script and stylesheet only, no outside source) and is not cached.
"""
from __future__ import annotations

import hmac
import json
import secrets
from pathlib import Path

import tornado.httpserver
import tornado.netutil
import tornado.web

from labkit.course.marking.course import MarkingCourse
from labkit.course.marking.page import CSP, index_page, todo_page
from labkit.course.marking.questionpage import prerender, question_page
from labkit.course.marking.store import Change, Store
from labkit.errors import OptionError

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "labkit-mark"


class _Guarded:
    """The token check and the headers every handler shares."""

    def prepare(self):
        token = self.settings["labkit_token"]
        given = self.get_query_argument("token", None)
        if given is not None and hmac.compare_digest(given, token):
            self.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
            if self.request.method == "GET":
                self.redirect(self.request.path + _query_without_token(self.request.query_arguments))
                return
        elif not hmac.compare_digest(self.get_cookie(COOKIE) or "", token):
            raise tornado.web.HTTPError(403, "a token is required")
        super().prepare()

    def set_default_headers(self):
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")


def _query_without_token(args: dict) -> str:
    from urllib.parse import urlencode

    rest = [(k, v.decode()) for k, vs in args.items() if k != "token" for v in vs]
    return "?" + urlencode(rest) if rest else ""


class Static(_Guarded, tornado.web.StaticFileHandler):
    pass


class Page(_Guarded, tornado.web.RequestHandler):
    @property
    def course(self) -> MarkingCourse:
        return self.settings["labkit_course"]

    @property
    def store(self) -> Store:
        return self.settings["labkit_store"]

    def ids(self) -> bool:
        return self.get_query_argument("ids", "") == "1"

    def page(self, text: str) -> None:
        self.xsrf_token  # sets the XSRF cookie the script sends back
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(text)


class Css(Page):
    """render.PAGE_CSS, the rules every labkit page shares."""

    def get(self):
        from labkit.course.render import PAGE_CSS

        self.set_header("Content-Type", "text/css; charset=utf-8")
        self.finish(PAGE_CSS)


class Index(Page):
    def get(self):
        self.page(index_page(self.course, self.store.load(), self.ids()))


class Todo(Page):
    def get(self):
        self.page(todo_page(self.course, self.store.load(), self.ids()))


class Question(Page):
    def get(self, grade_id: str):
        if grade_id not in self.course.questions:
            raise tornado.web.HTTPError(404)
        split = {int(s) for s in self.get_query_arguments("split") if s.isdigit()}
        self.page(question_page(self.course, grade_id, self.store.load(), self.ids(), split))


class Save(Page):
    """POST JSON ``{"revisions": {ref: revision}, "items": [...], "adjustment": x, "comment": "..."}``
    (``ref``: an answer's opaque name on the page, :meth:`MarkingCourse.ref`): 200 ``{"marks": {ref:
    mark}}``, 409 ``{"conflicts": {ref: mark}}`` or 400 ``{"error": "..."}``."""

    def post(self):
        from dataclasses import asdict

        try:
            body = json.loads(self.request.body)
            change = Change({str(k): int(v) for k, v in body["revisions"].items()}, [str(i) for i in body["items"]],
                            float(body.get("adjustment") or 0), str(body.get("comment") or ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._reply(400, {"error": "the request is not a mark (revisions, items, adjustment, comment)"})
        by_ref = self.course.by_ref()
        found = [by_ref[r] for r in change.revisions if r in by_ref]
        questions = {gid for gid, _ in found}
        if len(found) != len(change.revisions) or len(questions) != 1:
            return self._reply(400, {"error": "the answers are not those of one question of this course "
                                              "(the server restarted? reload the page)"})
        rubric = self.course.questions[questions.pop()]
        change = Change({a.key: change.revisions[self.course.ref(a)] for _, a in found}, change.items,
                        change.adjustment, change.comment)
        try:
            marks, ok = self.store.save(change, {i.id: i.points for i in rubric.items}, rubric.points,
                                        {a.key: a.sha256 for _, a in found})
        except OptionError as e:
            return self._reply(400, {"error": str(e)})
        refs = {a.key: self.course.ref(a) for _, a in found}
        self._reply(200 if ok else 409, {"marks" if ok else "conflicts": {refs[k]: asdict(m) for k, m in marks.items()}})

    def _reply(self, status: int, data: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


def make_app(course: MarkingCourse, token: str) -> tornado.web.Application:
    """The marking application; every answer is rendered before it serves (``questionpage.prerender``)."""
    prerender(course)
    return tornado.web.Application(
        [(r"/", Index), (r"/page.css", Css), (r"/todo", Todo), (r"/q/([^/]+)", Question), (r"/api/mark", Save)],
        static_path=str(STATIC), static_handler_class=Static, xsrf_cookies=True,
        labkit_course=course, labkit_store=Store(course.course, course.assignment), labkit_token=token)


def serve(course_dir: Path, host: str = "127.0.0.1", port: int = 0, token: str | None = None):
    """Listen on ``host``:``port`` (0: a free one). Returns (the server, the address with the token)."""
    import socket

    course = MarkingCourse.read(Path(course_dir))
    token = token or secrets.token_urlsafe(24)
    try:
        sockets = tornado.netutil.bind_sockets(port, address=host, family=socket.AF_INET if ":" not in host else 0)
    except OSError as e:
        raise OptionError(f"cannot listen on {host}:{port} ({e.strerror}): choose another --port, or leave it "
                          "out for a free one") from None
    server = tornado.httpserver.HTTPServer(make_app(course, token))
    server.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{bound}/?token={token}"
