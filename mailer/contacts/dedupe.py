"""Duplicate merging over a stream of any length, in flat memory.

Two records that share an address (`addresses.address_key`) are one person:
`normalize.merge` keeps the richer record's values (a confirmed record before
an OCR guess), fills its gaps from the other, and keeps the first record's
place and source.  A later, richer duplicate therefore changes the person
listed earlier, so nothing can be emitted before the whole stream was read:
the records wait in a private temporary SQLite database, which spills to disk
once it outgrows its small cache, so 100,000 contacts need no more memory than
1,000.  Then every entry comes out once, in the order read: the merged
contact at its first record's place, a `Duplicate` at every later one.
"""

from __future__ import annotations

import json
import marshal
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import fields, replace

from ..addresses import address_key
from ..models import Contact, Duplicate, Rejected
from .normalize import merge

Entry = Contact | Duplicate | Rejected

_SCHEMA = """
PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
PRAGMA cache_size=-2048;
-- one row per entry read, in order; grp: NULL = rejected (detail: reason),
-- = n: the person's first record, else a duplicate of person grp (detail: the shared address)
CREATE TABLE entry (n INTEGER PRIMARY KEY, grp INTEGER, source TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE person (grp INTEGER PRIMARY KEY, contact BLOB NOT NULL);  -- merged (_packed)
CREATE TABLE address (key TEXT PRIMARY KEY, grp INTEGER NOT NULL);
"""


def merged(items: Iterable[Contact | Rejected]) -> Iterator[Entry]:
    """Every item read, in order, with contacts sharing an address merged."""
    db = sqlite3.connect("", isolation_level=None)  # "": private, on disk when large
    try:
        db.executescript(_SCHEMA)
        db.execute("BEGIN")
        for n, item in enumerate(items):
            if isinstance(item, Rejected):
                db.execute("INSERT INTO entry VALUES (?, NULL, ?, ?)",
                           (n, item.source, json.dumps(item.to_json())))
            else:
                _add(db, n, item)
        rows = db.execute(
            "SELECT e.n, e.grp, e.source, e.detail, p.contact, k.source FROM entry e "
            "LEFT JOIN person p ON p.grp = e.grp LEFT JOIN entry k ON k.n = e.grp ORDER BY e.n"
        )
        for n, grp, source, detail, contact, kept in rows:
            if grp is None:
                data = json.loads(detail)
                yield Rejected(data["source"], data["reason"], data["fields"], data["name"])
            elif grp == n:
                yield _unpacked(contact)
            else:
                yield Duplicate(source, kept, detail)
    finally:
        db.close()


def _add(db: sqlite3.Connection, n: int, contact: Contact) -> None:
    if not contact.emails:  # a record built by hand: its one address
        contact = replace(contact, emails=(contact.email,))
    grp = None
    for email in contact.emails:
        row = db.execute("SELECT grp FROM address WHERE key = ?", (address_key(email),)).fetchone()
        if row is not None:
            grp, shared = row[0], email
            break
    if grp is None:
        grp = n
        db.execute("INSERT INTO person VALUES (?, ?)", (n, _packed(contact)))
        db.execute("INSERT INTO entry VALUES (?, ?, ?, '')", (n, n, contact.source))
        person = contact
    else:
        (stored,) = db.execute("SELECT contact FROM person WHERE grp = ?", (grp,)).fetchone()
        person = merge(_unpacked(stored), contact)
        db.execute("UPDATE person SET contact = ? WHERE grp = ?",
                   (_packed(person), grp))
        db.execute("INSERT INTO entry VALUES (?, ?, ?, ?)", (n, grp, contact.source, shared))
    db.executemany("INSERT OR IGNORE INTO address VALUES (?, ?)",
                   [(address_key(e), grp) for e in person.emails])


_FIELDS = tuple(f.name for f in fields(Contact))


def _packed(contact: Contact) -> bytes:
    """The contact's values in marshal's format: its strings, tuples and flags come back
    as they were (a third of JSON's time there and back, paid for every contact before the
    first message); the bytes never leave this process's private database."""
    return marshal.dumps(tuple(getattr(contact, name) for name in _FIELDS))


def _unpacked(data: bytes) -> Contact:
    return Contact(*marshal.loads(data))
