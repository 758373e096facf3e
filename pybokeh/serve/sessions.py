"""Open photos and full-resolution render jobs, kept in memory (no files) with bounded counts."""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from ..metadata import ImageMetadata
from .preview import Scene

#: Photos kept open at once by default; opening one more forgets the least recently used.
DEFAULT_MAX_SESSIONS = 4
#: An open photo untouched for this long (seconds) is forgotten.
SESSION_TTL_S = 3600.0


@dataclass
class Session:
    """One open photo: its scene, the name the browser gave it and where its depth came from."""

    scene: Scene
    name: str
    depth: dict[str, Any]
    orientation: int = 1  # the file's EXIF orientation (a depth map made from the stored pixels is turned)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one preview at a time per photo
    seconds_per_pixel: float | None = None  # the last preview's render time, for the download's estimate
    used: float = field(default_factory=time.monotonic)
    metadata: ImageMetadata | None = None  # the photo's EXIF and ICC profile, for the download


@dataclass
class Job:
    """A full-resolution render running in a thread; its result stays in memory until replaced or expired."""

    session_id: str
    pixels: int
    expected_s: float
    state: str = "queued"  # queued, rendering, encoding, done, error
    started: float = field(default_factory=time.monotonic)
    render_started: float | None = None
    finished: float | None = None
    error: str | None = None
    data: bytes | None = None
    media_type: str = "image/jpeg"
    filename: str = "render.jpg"

    def status(self) -> dict[str, Any]:
        now = self.finished or time.monotonic()
        rendering = now - self.render_started if self.render_started else 0.0
        return {"state": self.state, "elapsed_s": round(now - self.started, 2),
                "rendering_s": round(rendering, 2), "expected_s": round(self.expected_s, 2),
                "pixels": self.pixels, "error": self.error}


class Store:
    """Sessions and jobs by unguessable id; least recently used sessions are dropped past ``max_sessions``."""

    def __init__(self, max_sessions: int = DEFAULT_MAX_SESSIONS, ttl_s: float = SESSION_TTL_S) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.render_lock = threading.Lock()  # full renders one at a time (memory)
        #: Seconds per pixel of the last full render on this machine (None before the first).
        self.full_seconds_per_pixel: float | None = None

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl_s
        for sid in [sid for sid, s in self._sessions.items() if s.used < cutoff]:
            self._drop(sid)

    def _drop(self, sid: str) -> None:
        self._sessions.pop(sid, None)
        for jid in [jid for jid, job in self._jobs.items() if job.session_id == sid]:
            del self._jobs[jid]

    def add(self, session: Session) -> str:
        sid = secrets.token_urlsafe(16)
        with self._lock:
            self._expire()
            self._sessions[sid] = session
            while len(self._sessions) > self.max_sessions:
                self._drop(next(iter(self._sessions)))
        return sid

    def get(self, sid: str) -> Session:
        """The session; KeyError when unknown or expired."""
        with self._lock:
            self._expire()
            session = self._sessions[sid]
            self._sessions.move_to_end(sid)
            session.used = time.monotonic()
            return session

    def remove(self, sid: str) -> bool:
        with self._lock:
            found = sid in self._sessions
            self._drop(sid)
            return found

    def __len__(self) -> int:
        return len(self._sessions)

    def start_job(self, sid: str, job: Job, work: Callable[[Job], None]) -> str:
        """Register ``job`` (replacing the session's earlier ones) and run ``work(job)`` in a thread."""
        jid = secrets.token_urlsafe(16)
        with self._lock:
            for old in [j for j, other in self._jobs.items() if other.session_id == sid]:
                del self._jobs[old]
            self._jobs[jid] = job
        threading.Thread(target=work, args=(job,), name=f"pybokeh-render-{jid[:6]}", daemon=True).start()
        return jid

    def job(self, jid: str) -> Job:
        """The job; KeyError when unknown, replaced or its session is gone."""
        with self._lock:
            return self._jobs[jid]
