"""axe-core (bundled by ``axe-playwright-python``) over a page open in Playwright.

``scan(page)`` runs axe's WCAG 2.1 A/AA rules (and its best practices) in the page and returns a
``Scan``: every violation, and ``blocking``, those of impact "serious" or "critical", which the
accessibility tests assert to be empty. ``Scan.lines()`` is one line per violation (impact, rule,
how many nodes, the first node's selector) for a test's report.

Pages with a Content-Security-Policy that forbids inline scripts still scan: axe is injected through
Playwright's ``evaluate`` (the DevTools protocol), which the page's policy does not govern.
"""
from __future__ import annotations

from dataclasses import dataclass

BLOCKING = ("serious", "critical")
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@dataclass(frozen=True)
class Scan:
    url: str
    violations: list[dict]

    @property
    def blocking(self) -> list[dict]:
        return [v for v in self.violations if v.get("impact") in BLOCKING]

    def count(self, impact: str | None = None) -> int:
        return sum(1 for v in self.violations if impact is None or v.get("impact") == impact)

    def lines(self, violations: list[dict] | None = None) -> list[str]:
        out = []
        for v in self.violations if violations is None else violations:
            nodes = v.get("nodes", [])
            where = " ".join(map(str, nodes[0].get("target", []))) if nodes else ""
            out.append(f"{v.get('impact')}: {v.get('id')} ({len(nodes)} nodes, first {where}): {v.get('help')}")
        return out


def scan(page, context=None, tags=TAGS) -> Scan:
    """axe over ``page`` (or the part of it named by ``context``, a selector or axe context object)."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"resultTypes": ["violations"], "runOnly": {"type": "tag", "values": list(tags)}}
    results = Axe().run(page, context=context, options=options)
    return Scan(url=page.url, violations=list(results.response.get("violations", [])))


def assert_clean(page, context=None) -> Scan:
    """Scan and fail with every serious or critical violation listed."""
    result = scan(page, context)
    assert not result.blocking, f"axe on {result.url}:\n" + "\n".join(result.lines(result.blocking))
    return result


_INSIDE_JS = """([violations, selector]) => violations.map(v => v.nodes.map(n => {
  const target = Array.isArray(n.target[0]) ? n.target[0][0] : n.target[0];
  let el = null;
  try { el = document.querySelector(target); } catch (e) { el = null; }
  return !!(el && el.closest(selector));
}))"""


def partition(page, result: Scan, selector: str) -> tuple[list[dict], list[dict]]:
    """``result``'s violations split by where their nodes are: (inside an element matching
    ``selector``, everywhere else); a violation with nodes in both is in both, each with its own nodes."""
    flags = page.evaluate(_INSIDE_JS, [result.violations, selector])
    inside, outside = [], []
    for violation, inner in zip(result.violations, flags):
        for keep, bucket in ((True, inside), (False, outside)):
            nodes = [n for n, f in zip(violation.get("nodes", []), inner) if f == keep]
            if nodes:
                bucket.append({**violation, "nodes": nodes})
    return inside, outside
