"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) by component.

Each line of the file is ``frame;frame;...;leaf count`` with frames written as
``function (path:line)``.  Two views answer "where does the time go":

* self time by component: the innermost frame that belongs to a component
  (pyof, Kytos core, logging, asyncio, our code...) decides, so time in stdlib
  helpers (enum, copy, re) is charged to whoever called them and the shares add
  up to 100 %;
* inclusive time of the functions of interest (ours, Kytos', pyof's entry
  points): the share of samples with the function anywhere on the stack.

    python benchmarks/pyspy_summary.py profile.txt
"""

from __future__ import annotations

import collections
import re
import sys
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^:()]+)(?::(?P<line>\d+))?\)$")

#: (component, path fragment) in match order: the first fragment found in the path wins.
COMPONENTS: list[tuple[str, str]] = [
    ("pyof (OpenFlow pack/unpack)", "/pyof/"),
    ("of_core NApp (framing, handshake)", "napps/kytos/of_core/"),
    ("flow_manager NApp (flow codec, store)", "napps/kytos/flow_manager/"),
    ("dispatcher NApp", "napps/xmpp_ofc/dispatcher/"),
    ("l2_switch NApp (learning)", "napps/xmpp_ofc/l2_switch/"),
    ("rate_limiter NApp", "napps/xmpp_ofc/rate_limiter/"),
    ("xmpp_ofc library (decode, codec, packet)", "xmpp_ofc/"),
    ("Kytos core (buffers, events, connections)", "/kytos/core/"),
    ("logging", "/logging/"),
    ("asyncio event loop", "/asyncio/"),
    ("threads (threading, executors)", "/threading.py"),
    ("threads (threading, executors)", "/concurrent/"),
    ("sockets/selectors", "/selectors.py"),
    ("sockets/selectors", "/socket.py"),
    ("Flask/werkzeug (REST)", "/werkzeug/"),
    ("Flask/werkzeug (REST)", "/flask/"),
]


OTHER = "other (stdlib called from nothing above, C, unknown)"


def component(path: str) -> str | None:
    for name, fragment in COMPONENTS:
        if fragment in path:
            return name
    return None


def charged_component(frames: list[Frame]) -> str:
    """The innermost frame's component; stdlib helpers (enum, copy, re) count for their caller.

    ``Enum.__dir__`` called by pyof is pyof's cost, not "the standard library's".
    """
    for frame in reversed(frames):
        name = component(frame.path)
        if name is not None:
            return name
    return OTHER


@dataclass(frozen=True)
class Frame:
    function: str
    path: str

    @property
    def label(self) -> str:
        short = self.path
        for marker in ("site-packages/", "/work/main/"):
            if marker in short:
                short = short.split(marker, 1)[1]
        return f"{self.function} ({short})"


def parse_frame(text: str) -> Frame:
    found = FRAME.match(text.strip())
    if found is None:
        return Frame(text.strip(), "")
    return Frame(found["function"], found["path"])


def load(path: Path) -> list[tuple[list[Frame], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append(([parse_frame(part) for part in stack.split(";")], int(count)))
    return stacks


@dataclass
class Summary:
    samples: int
    by_component: list[tuple[str, float]]
    top_self: list[tuple[str, float]]
    top_inclusive: list[tuple[str, float]]


def summarise(stacks: list[tuple[list[Frame], int]], top: int = 12) -> Summary:
    total = sum(count for _, count in stacks) or 1
    by_component: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        real = [frame for frame in frames if frame.path]  # py-spy puts thread names first
        if not real:
            continue
        leaf = real[-1]
        by_component[charged_component(real)] += count
        self_time[leaf.label] += count
        for label in {frame.label for frame in real if _interesting(frame.path)}:
            inclusive[label] += count

    def shares(counter: collections.Counter[str], limit: int | None = None):
        return [(name, 100.0 * count / total) for name, count in counter.most_common(limit)]

    return Summary(total, shares(by_component), shares(self_time, top), shares(inclusive, top))


def _interesting(path: str) -> bool:
    return any(
        fragment in path
        for fragment in ("napps/", "xmpp_ofc/", "/kytos/core/", "/pyof/", "/logging/")
    )


def render(summary: Summary) -> str:
    lines = [f"{summary.samples} samples of the GIL holder", "", "self time by component:"]
    lines += [f"  {share:5.1f} %  {name}" for name, share in summary.by_component]
    lines += ["", "top functions, self time:"]
    lines += [f"  {share:5.1f} %  {name}" for name, share in summary.top_self]
    lines += ["", "top functions of Kytos/pyof/ours/logging, inclusive:"]
    lines += [f"  {share:5.1f} %  {name}" for name, share in summary.top_inclusive]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    print(render(summarise(load(Path(argv[1])))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
