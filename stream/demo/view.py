"""The demo's live terminal view (rich) and its headless log line.

Both read a :class:`~seismo.stream.demo.state.DemoState` and a few figures of the
scorer's own metrics; neither does I/O.

Examples
--------
>>> from seismo.stream.demo.state import DemoState
>>> state = DemoState()
>>> state.add_score({"event_id": "p:1", "device_id": "p", "score": 0.01, "threshold": 0.2,
...                  "model_version": "dense-1"})
>>> status_line(Snapshot(state, elapsed_s=12.0, produced=40, batch_ms=3.5))
'12s produced 40 scored 1 alerts 0 | 0 ev/s | batch 3.5 ms | threshold 0.2 | model dense-1'
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from seismo.stream.demo.state import DemoState


@dataclass(frozen=True)
class Snapshot:
    """What one refresh shows."""

    state: DemoState
    elapsed_s: float
    produced: int
    batch_ms: float | None = None
    duration_s: float | None = None
    note: str = ""


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def status_line(s: Snapshot) -> str:
    """One plain line for ``--no-tty`` runs and logs."""
    st = s.state
    return (
        f"{s.elapsed_s:.0f}s produced {s.produced} scored {st.scored} alerts {st.alerts} | "
        f"{st.rate.per_second():.0f} ev/s | batch {_fmt(s.batch_ms, '.1f', ' ms')} | "
        f"threshold {_fmt(st.threshold, '.4g')} | model {st.model_version or '-'}"
        + (f" | {s.note}" if s.note else "")
    )


def _header(s: Snapshot) -> Table:
    st = s.state
    grid = Table.grid(padding=(0, 3))
    for _ in range(4):
        grid.add_column()
    p50, p99 = st.latency_ms(0.5), st.latency_ms(0.99)
    clock = f"{s.elapsed_s:.0f} s" + (f" of {s.duration_s:.0f}" if s.duration_s else "")
    grid.add_row(
        Text.assemble(("events/s ", "dim"), (f"{st.rate.per_second():,.0f}", "bold")),
        Text.assemble(
            ("scored ", "dim"), (f"{st.scored:,}", "bold"), (f" / {s.produced:,}", "dim")
        ),
        Text.assemble(("alerts ", "dim"), (f"{st.alerts:,}", "bold red")),
        Text.assemble(("time ", "dim"), clock),
    )
    grid.add_row(
        Text.assemble(("batch ", "dim"), _fmt(s.batch_ms, ".1f", " ms")),
        Text.assemble(("event→alert p50/p99 ", "dim"), f"{_fmt(p50, '.0f')}/{_fmt(p99, '.0f')} ms"),
        Text.assemble(("threshold ", "dim"), _fmt(st.threshold, ".4g")),
        Text.assemble(("model ", "dim"), (st.model_version or "-", "cyan")),
    )
    return grid


def _alerts(s: Snapshot) -> Table:
    table = Table(expand=True, box=None, header_style="bold")
    for name, justify in (("device", "left"), ("event", "left"), ("z", "right"),
                          ("score", "right"), ("top features", "left")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for alert in list(s.state.latest):
        features = ", ".join(
            f"{f.get('name') or f.get('index')} {float(f.get('error', 0)):.2g}"
            for f in alert.get("top_features", [])[:3]
        )
        table.add_row(
            str(alert.get("device_id", "")),
            str(alert.get("event_id", "")),
            f"{float(alert.get('zscore', 0)):.1f}",
            f"{float(alert.get('score', 0)):.3g}",
            features,
        )
    return table


def render(s: Snapshot) -> Panel:
    """The live view: header figures, then the latest alerts, newest first."""
    parts: list[Table | Text] = [_header(s), Text(""), _alerts(s)]
    if s.note:
        parts.append(Text(s.note, style="yellow"))
    return Panel(Group(*parts), title="seismo demo", subtitle="Ctrl-C ends with a summary")
