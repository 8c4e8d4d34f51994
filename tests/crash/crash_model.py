"""What the crash suite's clients were told: each container and image with the set of states it
may be in after a restart, the journal of every operation, and a round's shared state."""

import threading
import time
from dataclasses import dataclass, field

YES, NO, MAYBE = "yes", "no", "maybe"
# A container's possible `State.Status` values after the restart.
CREATED, RUNNING, PAUSED, EXITED = "created", "running", "paused", "exited"
LIVE = (RUNNING, PAUSED, "restarting")


@dataclass
class Ctr:
    """A container as the journal knows it. `status` is the set of `State.Status` values it may
    show after the restart; `pid` the init it must still have if it runs (None: any)."""
    handle: str
    owner: str
    id: str = None
    names: set = field(default_factory=set)
    exists: str = YES
    status: set = field(default_factory=set)
    pid: int = None
    busy: bool = False  # an operation on it failed: the workload leaves it alone

    def __str__(self):
        return f"container {self.handle} ({(self.id or '?')[:12]}, names {sorted(self.names)})"


@dataclass
class Img:
    handle: str
    owner: str
    id: str = None
    tags: dict = field(default_factory=dict)  # ref -> YES/NO/MAYBE
    exists: str = YES
    busy: bool = False

    def __str__(self):
        return f"image {self.handle} ({(self.id or '?')[:19]}, tags {self.tags})"


@dataclass
class Vol:
    """A named volume: its name is its identity."""
    name: str
    owner: str
    exists: str = YES
    busy: bool = False

    def __str__(self):
        return f"volume {self.name}"


class Journal:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []
        self.t_base = time.monotonic()

    def add(self, who, op, target, t0, t1, outcome, detail=""):
        with self.lock:
            self.entries.append((t0, t1, who, op, target, outcome, detail))

    def text(self, last=None):
        with self.lock:
            es = sorted(self.entries)
        if last:
            es = es[-last:]
        return "\n".join(f"  {t0 - self.t_base:7.3f}-{t1 - self.t_base:7.3f} {who:6} {op:8} {target:42} {outcome}"
                         f"{': ' + detail if detail else ''}" for t0, t1, who, op, target, outcome, detail in es)


class Round:
    """One round's shared state: the objects, the journal, the kill's time, the violations."""

    def __init__(self, number, daemon, tar):
        self.n = number
        self.d = daemon
        self.tar = tar
        self.journal = Journal()
        self.ctrs = []
        self.imgs = []
        self.vols = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.kill_started = None  # monotonic time the SIGKILL was about to be sent
        self.kill_done = None  # ... and wharfd was dead (an operation begun later never reached it)
        self.violations = []

    def violation(self, what):
        with self.lock:
            self.violations.append(f"round {self.n}: {what}")
