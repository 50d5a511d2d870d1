"""The class roster: who should have submitted, matched to what was submitted.

Owns: :class:`Person`, :class:`Roster`, :func:`read_roster` (a CSV; the
columns of Canvas's gradebook export, Moodle's grading worksheet and grades
export, and GitHub Classroom's roster are recognised, any other named by
options) and :func:`apply_roster` (every person gets a submission: a
``missing`` one when they submitted nothing; a submission from someone not
on the roster is kept and flagged).
"""
from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.intake.submissions import Submission, number_duplicates, safe_student_id
from labkit.errors import OptionError

NOT_ON_ROSTER = "not on the roster"
NO_SUBMISSION = "missing (no submission)"
ID_COLUMNS = ("id", "student id", "student_id", "studentid", "student number", "id number", "username",
              "login", "user", "identifier", "email", "email address")
NAME_COLUMNS = ("name", "full name", "student name", "student")
EMAIL_COLUMNS = ("email", "email address", "e-mail", "mail")


@dataclass
class Person:
    """One row of the roster."""

    id: str                 # the roster's student id (Canvas: ID; Moodle worksheet: the participant number)
    name: str = ""
    email: str = ""
    platform_id: str = ""   # what a submission's platform_id is matched to (Canvas ID, participant, GitHub user)
    fields: dict[str, str] = field(default_factory=dict)  # the row as read


@dataclass
class Roster:
    kind: str               # canvas, moodle-worksheet, moodle, github, csv
    people: list[Person]
    columns: list[str]      # the CSV's header


def _norm(text: str) -> str:
    """A name compared loosely: ``Smith, Jane`` == ``smithjane`` == ``Smith Jane``; ``Zoë`` == ``Zoe``."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", text)


def _pick(header: list[str], given: str | None, names: tuple[str, ...], what: str, option: str) -> str | None:
    """The column named ``given`` (an error listing the columns when there is none), else the first of ``names``."""
    lower = {h.strip().lower(): h for h in header}
    if given is not None:
        if given.strip().lower() not in lower:
            raise OptionError(f"{option} {given!r}: the roster has no such column (it has: {', '.join(header)})")
        return lower[given.strip().lower()]
    return next((lower[n] for n in names if n in lower), None)


def read_roster(path: str | os.PathLike, *, id_column: str | None = None, name_column: str | None = None,
                email_column: str | None = None) -> Roster:
    """Read a roster CSV (comma, semicolon or tab; UTF-8 with or without Excel's BOM)."""
    path = Path(path)
    if not path.is_file():
        raise OptionError(f"--roster {path}: no such file")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    header = list(rows[0].keys()) if rows else next(csv.reader(io.StringIO(text), dialect=dialect), [])
    lower = {h.strip().lower() for h in header}
    if {"student", "id", "section"} <= lower:
        kind, cols = "canvas", ("ID", "Student", None)
    elif {"identifier", "full name"} <= lower:
        kind, cols = "moodle-worksheet", ("Identifier", "Full name", "Email address")
    elif "first name" in lower and ({"last name", "surname"} & lower):
        kind, cols = "moodle", ("ID number" if "id number" in lower else "Email address", None, "Email address")
    elif "github_username" in lower:
        kind, cols = "github", ("github_username", "name", None)
    else:
        kind, cols = "csv", (None, None, None)
    ids = _pick(header, id_column or cols[0], ID_COLUMNS, "id", "--roster-id")
    names = _pick(header, name_column or cols[1], NAME_COLUMNS, "name", "--roster-name")
    emails = _pick(header, email_column or cols[2], EMAIL_COLUMNS, "email", "--roster-email")
    if ids is None:
        raise OptionError(f"--roster {path}: no student id column found among {', '.join(header) or 'no columns'}; "
                         "name it with --roster-id COLUMN")
    first = _pick(header, None, ("first name",), "", "")
    last = _pick(header, None, ("last name", "surname"), "", "")
    people = []
    for row in rows:
        row = {k: (v or "").strip() for k, v in row.items() if k is not None}
        pid = row.get(ids, "")
        name = row.get(names, "") if names else " ".join(x for x in (row.get(first), row.get(last)) if x)
        if not pid or (kind == "canvas" and "points possible" in row.get("Student", "").lower()):
            continue  # Canvas's "Points Possible" row, blank lines
        platform = re.sub(r"^participant\s*", "", pid, flags=re.IGNORECASE) if kind == "moodle-worksheet" else pid
        people.append(Person(id=platform, name=name, email=row.get(emails, "") if emails else "",
                             platform_id=platform if kind in ("canvas", "moodle-worksheet", "github") else "",
                             fields=row))
    if not people:
        raise OptionError(f"--roster {path}: no students in it")
    seen = set()
    for person in people:
        if person.id in seen:
            raise OptionError(f"--roster {path}: student id {person.id!r} appears twice")
        seen.add(person.id)
    return Roster(kind=kind, people=people, columns=header)


def _match(sub: Submission, roster: Roster, free: dict[str, Person]) -> Person | None:
    """The roster's person for ``sub``: by platform id, then by id, then by a name no one else has."""
    keys = {k for k in (sub.platform_id, sub.student) if k}
    for person in free.values():
        if (sub.platform_id and person.platform_id == sub.platform_id) or (not person.platform_id and person.id in keys):
            return person
    name = _norm(sub.name) if sub.name else ""
    if name:
        same = [p for p in roster.people if _norm(p.name) == name]
        if len(same) == 1 and same[0].id in free:
            return same[0]
    return None


def missing_id(person: Person, kind: str) -> str:
    """The id the platform's download would have given this person (Canvas ``smithjane_12345``,
    Moodle ``Jane-Smith_12345``), else the roster's id, made safe."""
    if kind == "canvas" and person.name:
        return safe_student_id(f"{_norm(person.name)}_{person.id}")
    if kind == "moodle-worksheet" and person.name:
        return safe_student_id(f"{person.name}_{person.id}")
    return safe_student_id(person.id)


def apply_roster(subs: list[Submission], roster: Roster) -> list[Submission]:
    """Every submission with its person (name and email from the roster; unknown: flagged), and a
    ``missing`` submission for each person without one. Sorted by student id."""
    free = {p.id: p for p in roster.people}
    for sub in subs:
        if sub.ignored:
            continue
        person = _match(sub, roster, free)
        if person is None:
            sub.notes.append(NOT_ON_ROSTER)
            sub.attention.append(NOT_ON_ROSTER)
            continue
        del free[person.id]
        sub.person = person
        sub.name = person.name or sub.name
        sub.platform_id = sub.platform_id or person.platform_id
    missing = [Submission(student=missing_id(p, roster.kind), source="", problem=NO_SUBMISSION, name=p.name,
                          platform_id=p.platform_id, person=p, missing=True) for p in free.values()]
    return number_duplicates(subs + missing)
