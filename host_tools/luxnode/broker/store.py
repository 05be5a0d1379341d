"""Persistence in one sqlite3 file: retained messages and persistent sessions (with the
username each belongs to).

The broker marks what changed (retained topics, client ids); ``save`` writes
just those rows in one transaction. WAL mode means a committed save survives
the broker being killed (kill -9), though not the machine losing power.
Opening checks the file's integrity (``StoreDamaged``: the broker refuses to
start on it); a failed save raises ``SaveError`` carrying the operating
system's reason (e.g. "No space left on device"), not sqlite's.
"""

import errno
import os
import sqlite3
from pathlib import Path

from .session import UNCLAIMED, Session

SCHEMA = """
CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL);
-- owned 1: owner is the username that made the session (NULL: anonymous); 0: saved
-- before owners were kept (the first username to resume it claims it).
CREATE TABLE IF NOT EXISTS sessions (client_id TEXT PRIMARY KEY, next_packet_id INTEGER NOT NULL,
    owner TEXT, owned INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS subscriptions (client_id TEXT, filter TEXT, qos INTEGER,
    PRIMARY KEY (client_id, filter));
-- state: -1 queued, 0 awaiting PUBACK/PUBREC, 1 awaiting PUBCOMP; seq keeps the order.
CREATE TABLE IF NOT EXISTS messages (client_id TEXT, seq INTEGER, state INTEGER, packet_id INTEGER,
    topic TEXT, payload BLOB, qos INTEGER, retain INTEGER, PRIMARY KEY (client_id, seq));
CREATE TABLE IF NOT EXISTS incoming (client_id TEXT, packet_id INTEGER, PRIMARY KEY (client_id, packet_id));
"""
# Columns added since the first schema, with their definitions (added to older files on open).
MIGRATIONS = {"sessions": [("owner", "TEXT"), ("owned", "INTEGER NOT NULL DEFAULT 0")]}
QUEUED = -1
PROBE_BYTES = 65536  # written next to the file to learn the OS's reason when a save fails


class StoreDamaged(Exception):
    """The file fails sqlite's integrity check or is not a database."""


class SaveError(Exception):
    """A save failed; ``str()`` is the reason, from the operating system where it has one."""


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Payloads may be private: the file (and sqlite's -wal/-shm, which copy
        # its mode) is the owner's only, as mosquitto's database.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        self._db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._check()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _check(self) -> None:
        """Refuse a damaged file: what is saved into it later could be lost unseen."""
        try:
            problems = [row[0] for row in self._db.execute("PRAGMA integrity_check(5)")]
        except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
            problems = [str(exc)]
        if problems != ["ok"]:
            damage = "; ".join(problems)
            raise StoreDamaged(f"cannot use persistence file {self.path}: it is damaged ({damage}); "
                               f"move it aside (mv {self.path} {self.path}.damaged) to start with an empty "
                               f"store, or salvage it first: sqlite3 {self.path} .recover | sqlite3 recovered.db")

    def _migrate(self) -> None:
        for table, columns in MIGRATIONS.items():
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, definition in columns:
                if name not in present:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")

    def load(self) -> tuple[dict[str, tuple[bytes, int]], list[Session]]:
        db = self._db
        retained = {topic: (bytes(payload), qos)
                    for topic, payload, qos in db.execute("SELECT topic, payload, qos FROM retained")}
        sessions = {}
        for client_id, next_packet_id, owner, owned in db.execute(
                "SELECT client_id, next_packet_id, owner, owned FROM sessions"):
            session = sessions[client_id] = Session(client_id, persistent=True)
            session.next_packet_id = next_packet_id
            session.owner = owner if owned else UNCLAIMED
        for client_id, topic_filter, qos in db.execute("SELECT client_id, filter, qos FROM subscriptions"):
            if client_id in sessions:
                sessions[client_id].subscriptions[topic_filter] = qos
        for client_id, state, packet_id, topic, payload, qos, retain in db.execute(
                "SELECT client_id, state, packet_id, topic, payload, qos, retain FROM messages ORDER BY client_id, seq"):
            session = sessions.get(client_id)
            if session is None:
                continue
            if state == QUEUED:
                session.enqueue((topic, bytes(payload), qos, bool(retain)))
            else:
                session.inflight[packet_id] = [state, topic, bytes(payload), qos, bool(retain)]
        for client_id, packet_id in db.execute("SELECT client_id, packet_id FROM incoming"):
            if client_id in sessions:
                sessions[client_id].remember_incoming(packet_id)
        return retained, list(sessions.values())

    def save(self, retained: dict[str, tuple[bytes, int] | None], sessions: dict[str, Session | None]) -> None:
        """Write changed retained topics (None = cleared) and sessions (None = gone), all or
        nothing; SaveError on failure."""
        try:
            self._save(retained, sessions)
        except sqlite3.Error as exc:
            raise SaveError(self._reason(exc)) from exc

    def _reason(self, exc: sqlite3.Error) -> str:
        """sqlite says "database or disk is full" or "disk I/O error"; the OS knows why."""
        probe = self.path.with_name(self.path.name + ".probe")
        try:
            descriptor = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            try:
                os.write(descriptor, bytes(PROBE_BYTES))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as os_error:
            return os_error.strerror or errno.errorcode.get(os_error.errno, str(os_error))
        finally:
            probe.unlink(missing_ok=True)
        return str(exc)

    def _save(self, retained: dict, sessions: dict) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            for topic, message in retained.items():
                if message is None:
                    db.execute("DELETE FROM retained WHERE topic = ?", (topic,))
                else:
                    db.execute("INSERT OR REPLACE INTO retained VALUES (?, ?, ?)", (topic, message[0], message[1]))
            for client_id, session in sessions.items():
                for table in ("sessions", "subscriptions", "messages", "incoming"):
                    db.execute(f"DELETE FROM {table} WHERE client_id = ?", (client_id,))
                if session is None:
                    continue
                owned = session.owner is not UNCLAIMED
                db.execute("INSERT INTO sessions (client_id, next_packet_id, owner, owned) VALUES (?, ?, ?, ?)",
                           (client_id, session.next_packet_id, session.owner if owned else None, int(owned)))
                db.executemany("INSERT INTO subscriptions VALUES (?, ?, ?)",
                               [(client_id, f, q) for f, q in session.subscriptions.items()])
                rows = [(client_id, seq, state, packet_id, topic, payload, qos, retain)
                        for seq, (packet_id, (state, topic, payload, qos, retain))
                        in enumerate(session.inflight.items())]
                rows += [(client_id, len(rows) + seq, QUEUED, 0, topic, payload, qos, retain)
                         for seq, (topic, payload, qos, retain) in enumerate(session.queue)]
                db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                db.executemany("INSERT INTO incoming VALUES (?, ?)",
                               [(client_id, packet_id) for packet_id in session.incoming])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # sqlite may have rolled back already (a full disk does)
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the first error is the one worth reporting
            raise

    def close(self) -> None:
        self._db.close()
