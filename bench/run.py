"""`make bench`: every benchmark in one run, one table of figures against their baselines, and a
plot of rate and latency per benchmark.

Each benchmark module runs as its own process (`python bench/<module>.py --json FILE`, plus
`--quick` for the smoke check) and writes its figures with `bench.common.results_write`. The
modules are BENCHES below, then any other `bench/*.py` (so one added later runs too; one that
does not write results this way runs in the full run only, judged by its exit status). A
module that fails is reported and the others still run.

    make bench                       # the full run: bench/results/, the README's table, the PNG
    make bench BENCH_ARGS=--quick    # a smoke check in a few minutes: nothing is recorded
    .venv/bin/python bench/run.py --only api_create,receipts_ingest   # these rows replaced

Exit status 0 when every target was met, 1 when one was missed, 2 when a benchmark failed.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
README = BENCH / "README.md"
TABLE_START, TABLE_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
# In order: the cheap ones first, so a broken set-up shows early.
BENCHES = [
    "clients_overhead",
    "api_create",
    "receipts_ingest",
    "pipeline_throughput",
    "provider_latency",
    "delivery_engine",
    "callbacks_fairness",
]
# Arguments of the full run where a module's own defaults would take too long on two shared
# cores (each module alone keeps its defaults).
FULL_ARGS = {"pipeline_throughput": ["--notifications", "1000"]}
NOT_BENCHES = {"run", "common", "baselines", "profile_requests", "__init__"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke check; records nothing")
    parser.add_argument("--only", default="", help="comma-separated modules (default: all)")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write bench/results/, the README's table and the plot (default: unless --quick)",
    )
    args = parser.parse_args()
    if args.record is None:
        args.record = not args.quick
    return args


def modules() -> list[str]:
    """BENCHES, then every other benchmark module here (one that does not write results for
    this runner runs in the full run only, and is reported by its exit status)."""
    found = [
        path.stem
        for path in sorted(BENCH.glob("*.py"))
        if path.stem not in NOT_BENCHES and path.stem not in BENCHES
    ]
    return [name for name in BENCHES if (BENCH / f"{name}.py").exists()] + found


def _takes_json(command: list[str]) -> bool:
    """Whether the benchmark records figures (`--json`, with `--quick`): asked of its own
    `--help`, so a benchmark taking them through a shared helper is not left out."""
    shown = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True)
    return "--json" in shown.stdout


def run_one(name: str, quick: bool, outdir: Path) -> dict:
    out = outdir / f"{name}.json"
    log = outdir / f"{name}.log"
    command = [sys.executable, str(BENCH / f"{name}.py")]
    if not _takes_json(command):
        if quick:
            print(f"=== {name}: no --quick form, left out of the smoke check", flush=True)
            return {"bench": name, "figures": [], "exit": 0, "seconds": 0, "log": ""}
    else:
        command += ["--json", str(out), *(["--quick"] if quick else FULL_ARGS.get(name, []))]
    print(f"=== {name}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    with log.open("w") as sink:
        done = subprocess.run(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - started
    tail = "".join(log.read_text().splitlines(keepends=True)[-25:])
    print(tail, end="" if tail.endswith("\n") else "\n")
    print(f"=== {name}: exit {done.returncode} after {seconds:.0f} s (log {log})", flush=True)
    record = json.loads(out.read_text()) if out.exists() else {"bench": name, "figures": []}
    record.update(exit=done.returncode, seconds=round(seconds), log=str(log))
    return record


# --- the table ---------------------------------------------------------------------------------


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _spread(one: dict | None, unit: str = "") -> str:
    if not one:
        return ""
    unit = f" {unit}" if unit else ""
    if one["min"] == one["max"]:
        return f"{_number(one['median'])}{unit}"
    return f"{_number(one['median'])}{unit} ({_number(one['min'])}–{_number(one['max'])})"


def table(records: list[dict]) -> str:
    lines = [
        "| benchmark | figure | median (min–max) | baseline (same run) | ratio (min–max) "
        "| target | met |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    several_runs = len({record.get("when") for record in records}) > 1
    for record in records:
        if several_runs:
            record = {**record, "bench": f"{record['bench']} ({record.get('when')})"}
        if record.get("exit") not in (0, 1) and not record["figures"]:
            lines.append(f"| {record['bench']} | **failed** (exit {record.get('exit')}) "
                         "| | | | | |")  # fmt: skip
        elif not record["figures"] and record.get("seconds"):
            lines.append(f"| {record['bench']} | ran, exit {record['exit']} (its figures: its "
                         "own section below) | | | | | |")  # fmt: skip
        for one in record["figures"]:
            baseline = ""
            if one.get("baseline"):
                baseline = f"{one['baseline']}: {_spread(one.get('baseline_value'), one['unit'])}"
            met = {True: "yes", False: "**no**", None: ""}[one.get("met")]
            lines.append(
                f"| {record['bench']} | {one['name']} | {_spread(one['value'], one['unit'])} "
                f"| {baseline} | {_spread(one.get('ratio'))} | {one.get('target') or ''} "
                f"| {met} |"
            )
    return "\n".join(lines)


def notes(records: list[dict]) -> str:
    found = [
        f"- {record['bench']}, {one['name']}: {one['note']}"
        for record in records
        for one in record["figures"]
        if one.get("note")
    ]
    return "\n".join(found)


def readme_update(records: list[dict], when: str, load: tuple) -> None:
    text = README.read_text()
    block = (
        f"{TABLE_START}\n"
        f"Latest `make bench` ({when}, {os.cpu_count()} cores, load average before the run "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; figures in `bench/results/latest.json`, "
        f"plot `bench/results/latest.png`):\n\n{table(records)}\n\n{notes(records)}\n"
        f"{TABLE_END}"
    )
    if TABLE_START in text:
        pattern = re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END)
        text = re.sub(pattern, lambda _: block, text, flags=re.DOTALL)
    else:
        text += "\n" + block + "\n"
    README.write_text(text)


# --- the plot ----------------------------------------------------------------------------------


def plot(records: list[dict], path: Path, title: str) -> None:
    """Three panels: each figure's ratio to its baseline against its target; rates (measured
    and baseline, log scale); latencies (p50/p95/p99). Whiskers: min and max of the rounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = [(r["bench"], f) for r in records for f in r["figures"]]
    ratios = [(b, f) for b, f in figures if f.get("ratio")]
    rates = [(b, f) for b, f in figures if f["unit"].endswith("/s")]
    latencies = [(b, f) for b, f in figures if f.get("latency_ms")]
    heights = [max(len(ratios), 1), max(len(rates), 1), max(len(latencies), 1)]
    fig, axes = plt.subplots(
        3, 1, figsize=(11, 2.2 + 0.45 * sum(heights)), gridspec_kw={"height_ratios": heights}
    )

    def label(bench: str, one: dict) -> str:
        return f"{bench}: {one['name']}"

    def whiskers(one: dict) -> list[list[float]]:
        return [[one["median"] - one["min"]], [one["max"] - one["median"]]]

    ax = axes[0]
    for row, (_bench, one) in enumerate(ratios):
        ratio = one["ratio"]
        colour = {True: "tab:green", False: "tab:red", None: "tab:gray"}[one.get("met")]
        ax.barh(row, ratio["median"], xerr=whiskers(ratio), color=colour, capsize=3)
        ax.text(ratio["max"] + 0.02, row, f"{ratio['median']:.2f}  (target {one['target']})",
                va="center", fontsize=8)  # fmt: skip
    ax.set_yticks(range(len(ratios)), [label(*r) for r in ratios], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio to the baseline of the same run (green: target met, red: missed)")
    ax.set_xlim(0, max([1.2] + [one["ratio"]["max"] * 1.35 for _, one in ratios]))
    ax.set_title(title, fontsize=10)

    ax = axes[1]
    for row, (_bench, one) in enumerate(rates):
        value = one["value"]
        ax.barh(row - 0.2, value["median"], height=0.4, xerr=whiskers(value), capsize=3,
                color="tab:blue", label="measured" if row == 0 else None)  # fmt: skip
        if one.get("baseline_value") and one["unit"] == one.get("baseline_unit", one["unit"]):
            base = one["baseline_value"]
            ax.barh(row + 0.2, base["median"], height=0.4, xerr=whiskers(base), capsize=3,
                    color="tab:gray", label="baseline" if row == 0 else None)  # fmt: skip
    ax.set_yticks(range(len(rates)), [f"{label(*r)} ({r[1]['unit']})" for r in rates], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("rate, log scale (blue: measured, grey: its baseline)")

    ax = axes[2]
    colours = {"p50": "tab:blue", "p95": "tab:orange", "p99": "tab:red"}
    for row, (_bench, one) in enumerate(latencies):
        shown = [k for k in ("p50", "p95", "p99") if k in one["latency_ms"]]
        for n, key in enumerate(shown):
            offset = (n - (len(shown) - 1) / 2) * 0.25
            ax.barh(row + offset, one["latency_ms"][key], height=0.25, color=colours[key],
                    label=key if row == 0 or key not in ax.get_legend_handles_labels()[1]
                    else None)  # fmt: skip
    ax.set_yticks(range(len(latencies)), [label(*r) for r in latencies], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms, log scale")
    if latencies:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def merged_with_latest(records: list[dict], when: str) -> tuple[list[dict], str]:
    """`--only` with recording: these records in place of their earlier ones in
    `latest.json`, the others kept (each row says when it ran)."""
    latest = RESULTS / "latest.json"
    earlier = json.loads(latest.read_text())["benchmarks"] if latest.exists() else []
    fresh = {record["bench"]: record for record in records}
    kept = [{"when": "earlier run", **record} for record in earlier if record["bench"] not in fresh]
    order = {name: n for n, name in enumerate(modules())}
    merged = sorted(kept + records, key=lambda record: order.get(record["bench"], len(order)))
    runs = sorted({record["when"] for record in merged})
    return merged, "; ".join(runs) if len(runs) > 1 else when


def main() -> int:
    args = parse_args()
    wanted = [name for name in args.only.split(",") if name] or modules()
    outdir = Path(tempfile.mkdtemp(prefix="bench-run-"))
    load = os.getloadavg()
    started = datetime.now(UTC)
    when = f"{started:%Y-%m-%d %H:%M} UTC, {'quick' if args.quick else 'full'}"
    records = [{**run_one(name, args.quick, outdir), "when": when} for name in wanted]
    if args.only and args.record:
        records, when = merged_with_latest(records, when)
    print(f"\n{table(records)}\n\n{notes(records)}")
    png = (RESULTS if args.record else outdir) / "latest.png"
    if args.record:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.json").write_text(
            json.dumps({"when": when, "load_average": load, "benchmarks": records}, indent=2) + "\n"
        )
        readme_update(records, when, load)
    plot(records, png, f"make bench, {when}")
    print(f"plot: {png}; logs: {outdir}")
    if any(r.get("exit") not in (0, 1) for r in records):
        return 2
    return 0 if all(f.get("met") is not False for r in records for f in r["figures"]) else 1


if __name__ == "__main__":
    sys.exit(main())
