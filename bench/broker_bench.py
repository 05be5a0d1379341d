#!/usr/bin/env python3
"""Benchmark `luxnode broker` against mosquitto and amqtt with one shared load, in one run.

    python bench/broker_bench.py            # full run, 3 interleaved repetitions (about 5 minutes)
    python bench/broker_bench.py --quick    # smaller counts, one repetition (under a minute)
    python bench/broker_bench.py --brokers mosquitto,amqtt --json out.json
    python bench/broker_bench.py --profile /tmp/prof   # py-spy on luxnode during 1:1 runs
    python bench/broker_bench.py --hostile-only        # only the hostile loads, luxnode and mosquitto
    python bench/broker_bench.py --no-hostile          # only the throughput figures

Figures: 1 publisher -> 1 subscriber at QoS 0/1/2 with 64-byte payloads (delivered
messages/s, lost messages), the same QoS 0 stream through the Debian C clients
(mosquitto_pub -l | mosquitto_sub), fan-in from N connections each publishing once a
second (broker CPU, p50/p99 latency), and resident memory per idle connection.
Then the hostile loads (broker_hostile.py), luxnode beside mosquitto, each on a freshly
started broker: 1,000 wildcard SUBSCRIBEs over 20,000 retained messages, a 100 MB
PUBLISH end to end (median of 3 runs), and peak RSS under 8 connections announcing
200 MB CONNECTs, each with an operator's worst PINGREQ round trip and the goal met or not.
amqtt runs from bench/.venv (created on first use) because it pins an older websockets.
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import broker_cclients
import broker_hostile
import broker_load
import broker_profile
from broker_procs import AMQTT_VERSION, Broker, venv_tool

BROKERS = ("luxnode", "mosquitto", "amqtt")
HOSTILE_BROKERS = ("luxnode", "mosquitto")
C_CLIENTS_MAX = 200_000  # mosquitto_pub -l tops out near 150k msg/s: keep that run short


def versions() -> str:
    """What was measured, on what: the figures mean little without it."""
    mosq = subprocess.run([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"], capture_output=True, text=True)
    mosq_version = (mosq.stdout or mosq.stderr).split("\n")[0].replace("mosquitto version ", "")
    lux = subprocess.run([sys.executable, "-m", "luxnode", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{lux or 'luxnode ?'} | mosquitto {mosq_version} | amqtt {AMQTT_VERSION} | "
            f"Python {platform.python_version()} | {os.cpu_count()} CPUs")


def sized_count(port: int, qos: int, seconds: float, floor: int, ceiling: int) -> int:
    """A message count that takes about ``seconds`` on this broker, from a short probe run."""
    probe = broker_load.one_to_one(port, qos, 2000)
    if probe["error"] or probe["rate"] <= 0:
        return floor
    return int(min(ceiling, max(floor, probe["rate"] * seconds)))


def measured(broker: Broker, qos: int, count: int, log) -> dict:
    cpu0, t0 = broker.cpu(), time.perf_counter()
    run = broker_load.one_to_one(broker.port, qos, count)
    cpu = broker.cpu() - cpu0
    run["cpu_pct"] = 100.0 * cpu / (time.perf_counter() - t0)
    run["cpu_us_per_msg"] = 1e6 * cpu / max(1, run["delivered"])
    log(f"  {broker.name} qos{qos}: {run['delivered']}/{count} in {run['seconds']:.2f} s = {run['rate']:,.0f} msg/s, "
        f"lost {run['lost']}, dup {run['duplicates']}, cpu {run['cpu_pct']:.0f}% ({run['cpu_us_per_msg']:.1f} us/msg)"
        + (f", error {run['error']}" if run["error"] else ""))
    return run


def median_run(runs: list[dict]) -> dict:
    best = dict(sorted(runs, key=lambda r: r["rate"])[len(runs) // 2])
    best["lost_any"] = sum(r["lost"] for r in runs)
    return best


def run_all(names: list[str], opts, workdir: Path, log) -> dict:
    """Every broker runs at once (idle ones cost nothing) and the 1:1 repetitions are
    interleaved, so a change in the machine's load hits all three alike."""
    results = {name: {} for name in names}
    brokers: dict[str, Broker] = {}

    def guarded(name, step):
        try:
            step()
        except (RuntimeError, OSError, ConnectionError, asyncio.TimeoutError) as exc:
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            results[name]["error"] = f"{type(exc).__name__}: {exc}"
            brokers.pop(name).stop()

    profiler = None
    try:
        for name in names:
            broker = Broker(name, workdir)
            try:
                broker.start()
            except (RuntimeError, OSError) as exc:
                log(f"{name}: FAILED to start: {exc}")
                results[name]["error"] = str(exc)
                continue
            brokers[name] = broker
            log(f"{name}: pid {broker.pid} on port {broker.port}")

        if opts.hostile_only:
            run_hostile(brokers, results, opts, log, guarded)
            return results

        for name, broker in list(brokers.items()):
            def idle(broker=broker, result=results[name]):
                result["idle"] = asyncio.run(broker_load.idle_memory(broker.port, opts.connections, broker.rss))
                log(f"  {broker.name} idle: {result['idle']['per_conn_kib']:.1f} KiB/conn "
                    f"({result['idle']['rss_before_kib']} -> {result['idle']['rss_after_kib']} KiB)")
            guarded(name, idle)

        if opts.profile and "luxnode" in brokers:
            profiler = start_profiler(brokers["luxnode"].pid, opts.profile)
        for qos in (0, 1):
            counts, runs = {}, {name: [] for name in brokers}
            for name, broker in list(brokers.items()):
                guarded(name, lambda: counts.__setitem__(name, sized_count(broker.port, qos, opts.seconds,
                                                                           2000, 1_000_000)))
            for _ in range(opts.repeat):
                for name, broker in list(brokers.items()):
                    guarded(name, lambda: runs[name].append(measured(broker, qos, counts[name], log)))
            for name in brokers:
                results[name][f"qos{qos}"] = median_run(runs[name])
        if profiler:
            stop_profiler(profiler, opts.profile, log)
            profiler = None

        for name, broker in list(brokers.items()):
            def rest(broker=broker, result=results[name]):
                qos2 = broker_load.one_to_one(broker.port, 2, opts.qos2_count)
                log(f"  {broker.name} qos2: {qos2['delivered']}/{qos2['count']} = {qos2['rate']:,.0f} msg/s, "
                    f"lost {qos2['lost']}" + (f", error {qos2['error']}" if qos2["error"] else ""))
                result["qos2"] = qos2
                if broker_cclients.available():
                    c = broker_cclients.stream(broker.port, min(result["qos0"]["count"], C_CLIENTS_MAX), workdir)
                    log(f"  {broker.name} C clients qos0: {c['delivered']}/{c['count']} = {c['rate']:,.0f} msg/s")
                    result["c_qos0"] = c
                fan = asyncio.run(broker_load.fan_in(broker.port, opts.connections, opts.fanin_seconds, broker.cpu))
                log(f"  {broker.name} fan-in: {fan['received']}/{fan['sent']} p50 {fan['p50_ms']:.2f} ms "
                    f"p99 {fan['p99_ms']:.2f} ms cpu {fan['cpu_pct']:.1f}%")
                result["fanin"] = fan
            guarded(name, rest)
        if not opts.no_hostile:
            run_hostile(brokers, results, opts, log, guarded)
    finally:
        if profiler and profiler.poll() is None:
            profiler.kill()
        for broker in brokers.values():
            broker.stop()
    return results


def run_hostile(brokers: dict, results: dict, opts, log, guarded) -> None:
    """Each hostile load on a freshly started luxnode and mosquitto (nothing left over from
    the runs before, nor from each other)."""
    loads = (
        ("wildcard", lambda b: broker_hostile.wildcard_subscribes(b.port),
         lambda r: f"{r['seconds']:.3f} s, operator ping max {r['ping_max_ms']:.0f} ms"),
        ("big_publish", lambda b: broker_hostile.big_publishes(b.port),
         lambda r: (f"{r['seconds']:.2f} s (median of {', '.join(f'{s:.2f}' for s in r['runs'])})"
                    if r["seconds"] is not None else f"FAILED {r['error']}")),
        ("connect_flood", lambda b: broker_hostile.connect_flood(b.port, b.rss, b.cpu, opts.flood_seconds),
         lambda r: (f"peak RSS {r['peak_rss_mib']:.0f} MiB (from {r['baseline_rss_mib']:.0f}), "
                    f"cpu {r['cpu_pct']:.0f}%, took {r['accepted_mib']:,.0f} MiB, "
                    f"operator ping max {r['ping_max_ms']:.0f} ms")),
    )
    for key, load, describe in loads:
        for name in HOSTILE_BROKERS:
            if name not in brokers:
                continue
            broker = brokers[name]

            def step(broker=broker, name=name):
                broker.stop()
                broker.start()
                result = results[name][key] = load(broker)
                log(f"  {name} {key}: {describe(result)}")
            guarded(name, step)


def start_profiler(pid: int, outdir: str) -> subprocess.Popen:
    Path(outdir).mkdir(parents=True, exist_ok=True)
    spy = venv_tool("py-spy", "py-spy")
    proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                             "--nonblocking", "-o", str(Path(outdir) / "luxnode.collapsed")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches before the load starts
    return proc


def stop_profiler(proc: subprocess.Popen, outdir: str, log) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    log(broker_profile.summary(Path(outdir) / "luxnode.collapsed"))


# -- the table ----------------------------------------------------------------------------

ROWS = (
    # label, key path, format, higher is better
    ("QoS 0 1:1 msg/s", ("qos0", "rate"), "{:,.0f}", True),
    ("QoS 0 1:1 lost", ("qos0", "lost_any"), "{:d}", False),
    ("QoS 0 broker CPU us/msg", ("qos0", "cpu_us_per_msg"), "{:.2f}", False),
    ("QoS 1 1:1 msg/s", ("qos1", "rate"), "{:,.0f}", True),
    ("QoS 1 1:1 lost", ("qos1", "lost_any"), "{:d}", False),
    ("QoS 1 broker CPU us/msg", ("qos1", "cpu_us_per_msg"), "{:.2f}", False),
    ("QoS 2 1:1 msg/s", ("qos2", "rate"), "{:,.0f}", True),
    ("QoS 2 1:1 lost", ("qos2", "lost"), "{:d}", False),
    ("QoS 0 C clients msg/s", ("c_qos0", "rate"), "{:,.0f}", True),
    ("fan-in broker CPU %", ("fanin", "cpu_pct"), "{:.1f}", False),
    ("fan-in p50 latency ms", ("fanin", "p50_ms"), "{:.2f}", False),
    ("fan-in p99 latency ms", ("fanin", "p99_ms"), "{:.2f}", False),
    ("fan-in delivered", ("fanin", "received"), "{:d}", True),
    ("RSS per idle conn KiB", ("idle", "per_conn_kib"), "{:.1f}", False),
)


def lookup(result, path):
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


def table(results: dict) -> str:
    names = [n for n in BROKERS if n in results]
    labels = {"mosquitto": "lux/mosq", "amqtt": "lux/amqtt"}
    ratios = [(labels[peer], peer) for peer in labels if "luxnode" in results and peer in results]
    header = f"{'figure':<26}" + "".join(f"{n:>14}" for n in names) + "".join(f"{r:>11}" for r, _ in ratios)
    lines = [header, "-" * len(header)]
    for label, path, fmt, _ in ROWS:
        cells = []
        for n in names:
            value = lookup(results[n], path)
            cells.append(f"{fmt.format(value) if value is not None else '-':>14}")
        ratio_cells = []
        for _, peer in ratios:
            ours, theirs = lookup(results["luxnode"], path), lookup(results[peer], path)
            ok = isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and theirs
            ratio_cells.append(f"{ours / theirs:>10.2f}x" if ok and "lost" not in label else f"{'':>11}")
        lines.append(f"{label:<26}" + "".join(cells) + "".join(ratio_cells))
    return "\n".join(lines)


def targets(results: dict) -> list[str]:
    """The issue's targets, each with its verdict."""
    out = []
    lux = results.get("luxnode")
    if not lux:
        return out
    rate = lookup(lux, ("qos0", "rate"))
    for peer, factor in (("mosquitto", 0.5), ("amqtt", 3.0)):
        theirs = lookup(results.get(peer, {}), ("qos0", "rate"))
        if rate and theirs:
            verdict = "met" if rate >= factor * theirs else "NOT met"
            out.append(f"QoS 0 >= {factor}x {peer}: {rate / theirs:.2f}x, {verdict}")
    for qos, key in ((1, "lost_any"), (2, "lost")):
        lost = lookup(lux, (f"qos{qos}", key))
        if lost is not None:
            out.append(f"no message lost at QoS {qos}: {'met' if lost == 0 else f'NOT met ({lost} lost)'}")
    return out


# label, key path, format, goal (a function of luxnode's and mosquitto's figures -> met?) and its text
HOSTILE_ROWS = (
    ("1000 wildcard SUBSCRIBEs s", ("wildcard", "seconds"), "{:.3f}",
     lambda ours, theirs: ours <= 2 * theirs, "<= 2x mosquitto"),
    ("  operator ping max ms", ("wildcard", "ping_max_ms"), "{:.0f}", None, ""),
    ("100 MB PUBLISH s, median", ("big_publish", "seconds"), "{:.2f}", lambda ours, theirs: ours <= 1.0, "<= 1 s"),
    ("CONNECT flood peak RSS MiB", ("connect_flood", "peak_rss_mib"), "{:.0f}",
     lambda ours, theirs: ours <= 64, "<= 64 MiB"),
    ("  broker CPU %", ("connect_flood", "cpu_pct"), "{:.0f}", None, ""),
    ("  operator ping max ms", ("connect_flood", "ping_max_ms"), "{:.0f}", None, ""),
)


def hostile_table(results: dict) -> str:
    if not any(key in results.get(name, {}) for name in HOSTILE_BROKERS for key in ("wildcard", "big_publish")):
        return ""
    header = f"{'hostile load':<28}{'luxnode':>12}{'mosquitto':>12}{'lux/mosq':>10}  goal"
    lines = [header, "-" * (len(header) + 24)]
    for label, path, fmt, goal, goal_text in HOSTILE_ROWS:
        ours, theirs = lookup(results.get("luxnode", {}), path), lookup(results.get("mosquitto", {}), path)
        cells = "".join(f"{fmt.format(v) if isinstance(v, (int, float)) else '-':>12}" for v in (ours, theirs))
        both = isinstance(ours, (int, float)) and isinstance(theirs, (int, float))
        ratio = f"{ours / theirs:>9.2f}x" if both and theirs and goal is not None else f"{'':>10}"
        verdict = ""
        if goal is not None:
            verdict = f"  {goal_text}: " + (("met" if goal(ours, theirs) else "NOT met") if both else "not measured")
        lines.append(f"{label:<28}{cells}{ratio}{verdict}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one repetition (about a minute)")
    parser.add_argument("--brokers", default=",".join(BROKERS), help="comma-separated subset of " + ",".join(BROKERS))
    parser.add_argument("--json", metavar="FILE", help="also write every measured figure as JSON")
    parser.add_argument("--profile", metavar="DIR", help="record luxnode's 1:1 runs with py-spy into DIR")
    parser.add_argument("--hostile-only", action="store_true",
                        help="only the hostile loads, on luxnode and mosquitto")
    parser.add_argument("--no-hostile", action="store_true", help="only the throughput figures")
    opts = parser.parse_args(argv)
    opts.seconds = 1.5 if opts.quick else 4.0
    opts.repeat = 1 if opts.quick else 3
    opts.connections = 1000
    opts.fanin_seconds = 5 if opts.quick else 15
    opts.qos2_count = 2000 if opts.quick else 10000
    opts.flood_seconds = 4 if opts.quick else 10
    names = [n.strip() for n in opts.brokers.split(",") if n.strip()]
    if opts.hostile_only:
        names = [n for n in names if n in HOSTILE_BROKERS]
    unknown = set(names) - set(BROKERS)
    if unknown:
        parser.error(f"unknown broker(s): {', '.join(sorted(unknown))}")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="broker-bench-") as tmp:
        results = run_all(names, opts, Path(tmp), log)
    print(versions())
    if not opts.hostile_only:
        print(table(results))
        for line in targets(results):
            print(line)
    print(hostile_table(results))
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
