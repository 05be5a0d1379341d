"""Persistence in one sqlite3 file: retained messages and persistent sessions.

The broker marks what changed (retained topics, client ids); ``save`` writes
just those rows in one transaction. WAL mode means a committed save survives
the broker being killed (kill -9), though not the machine losing power.
"""

import os
import sqlite3
from pathlib import Path

from .session import Session

SCHEMA = """
CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (client_id TEXT PRIMARY KEY, next_packet_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (client_id TEXT, filter TEXT, qos INTEGER,
    PRIMARY KEY (client_id, filter));
-- state: -1 queued, 0 awaiting PUBACK/PUBREC, 1 awaiting PUBCOMP; seq keeps the order.
CREATE TABLE IF NOT EXISTS messages (client_id TEXT, seq INTEGER, state INTEGER, packet_id INTEGER,
    topic TEXT, payload BLOB, qos INTEGER, retain INTEGER, PRIMARY KEY (client_id, seq));
CREATE TABLE IF NOT EXISTS incoming (client_id TEXT, packet_id INTEGER, PRIMARY KEY (client_id, packet_id));
"""
QUEUED = -1


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Payloads may be private: the file (and sqlite's -wal/-shm, which copy
        # its mode) is the owner's only, as mosquitto's database.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def load(self) -> tuple[dict[str, tuple[bytes, int]], list[Session]]:
        db = self._db
        retained = {topic: (bytes(payload), qos)
                    for topic, payload, qos in db.execute("SELECT topic, payload, qos FROM retained")}
        sessions = {}
        for client_id, next_packet_id in db.execute("SELECT client_id, next_packet_id FROM sessions"):
            session = sessions[client_id] = Session(client_id, persistent=True)
            session.next_packet_id = next_packet_id
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
        """Write changed retained topics (None = cleared) and sessions (None = gone)."""
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
                db.execute("INSERT INTO sessions VALUES (?, ?)", (client_id, session.next_packet_id))
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
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()
