"""The cluster benchmark's Markdown report."""

from __future__ import annotations

import statistics
from typing import Any, Dict, List, Optional

from bench.cluster.analysis import REPLICA_GAIN_GOAL, REPLICA_GAIN_SHARDS, cluster_labels
from bench.cluster.ray_floor import PAYLOAD_BYTES
from bench.cluster.targets import EMBEDDED, target_label

Document = Dict[str, Any]
# Above this many cores of other work during a measurement, the machine was disturbed.
OTHER_LOAD_WARNING = 0.1
# A run that kept this share of the usable cores busy was bound by them.
SATURATED = 0.9


def _verdict(met: Optional[bool]) -> str:
    return "not measured" if met is None else ("**met**" if met else "**not met**")


def _median_of(values: Optional[List[float]], form: str) -> str:
    return "—" if not values else form.format(statistics.median(values))


def _rounds(values: List[float]) -> str:
    return ", ".join(f"{value:,.0f}" for value in values)


def _floor(result: Dict[str, Any]) -> str:
    """Ray's own round trip, measured at the start of every round."""
    trips = result["ray_round_trip"]
    p50s = [trip["latency_ms_p50"] for trip in trips]
    return (f"Ray's own round trip (an actor method returning {PAYLOAD_BYTES:,} bytes, one call at a time): p50 "
            f"{statistics.median(p50s):.3f} ms, p99 {statistics.median(trip['latency_ms_p99'] for trip in trips):.3f} "
            f"ms (p50 by round: {', '.join(f'{p50:.3f}' for p50 in p50s)}); a cluster search makes one such call per "
            "shard, at once.")


def _ingest(target: Dict[str, Any]) -> str:
    """Ingest points/s, or why there is none: the folder was filled with other replicas."""
    if target["ingest"] is None:
        return "(folder above)"
    return f"{target['ingest']['points_per_second']:,.0f}"


def _results_table(result: Dict[str, Any], summary: Dict[str, Any], k: int, clients: int, batch: int) -> List[str]:
    medians = summary["medians"]
    lines = [f"| target | ingest pts/s | recall@{k} | single p50 ms | single p99 ms | single QPS | "
             f"Ray hop p50 ms | batch-{batch} QPS | batch p50 ms | batch p99 ms | batch overhead | "
             f"{clients}-client QPS | {clients}-client cores: driver / Ray / other |", "|---" * 13 + "|"]
    for target in result["targets"]:
        label = target["label"]
        single, batched, concurrent = (medians[label][mode] for mode in ("single", "batch", "concurrent"))
        lines.append(
            f"| {label} | {_ingest(target)} | {target['recall']:.4f} | "
            f"{single['latency_ms_p50']:.3f} | {single['latency_ms_p99']:.3f} | {single['qps']:,.0f} | "
            f"{_median_of(summary['hop_ms'].get(label), '{:+.3f}')} | {batched['qps']:,.0f} | "
            f"{batched['latency_ms_p50']:.1f} | {batched['latency_ms_p99']:.1f} | "
            f"{_median_of(summary['batch_overhead'].get(label), '{:+.0%}')} | {concurrent['qps']:,.0f} | "
            f"{concurrent['driver_cores']:.2f} / {concurrent['ray_cores']:.2f} / {concurrent['other_cores']:.2f} |")
    return lines


def _rounds_table(result: Dict[str, Any], summary: Dict[str, Any], clients: int, batch: int) -> List[str]:
    lines = [f"| target | single QPS by round | batch-{batch} QPS by round | {clients}-client QPS by round |",
             "|---|---|---|---|"]
    for target in result["targets"]:
        modes = summary["medians"][target["label"]]
        lines.append(f"| {target['label']} | {_rounds(modes['single']['qps_rounds'])} | "
                     f"{_rounds(modes['batch']['qps_rounds'])} | {_rounds(modes['concurrent']['qps_rounds'])} |")
    return lines


def _cpu_ms_per_query(row: Dict[str, Any], background: float) -> float:
    """CPU time the driver and Ray's processes spent per query answered during a measurement,
    less Ray's ``background`` cores (the idle clusters' use, taken from the embedded
    database's measurement)."""
    return (row["driver_cores"] + max(0.0, row["ray_cores"] - background)) * 1000.0 / row["qps"]


def _cores_table(result: Dict[str, Any], summary: Dict[str, Any], clients: int, cores: int) -> List[str]:
    medians = summary["medians"]
    embedded, background = medians[EMBEDDED]["concurrent"]["qps"], medians[EMBEDDED]["concurrent"]["ray_cores"]
    lines = [f"| target | 1-client QPS | {clients}-client QPS | {clients} clients over 1 | {clients}-client QPS over "
             f"embedded's | cores busy at {clients} clients: all = driver + Ray + other | CPU ms per query at "
             f"{clients} clients (driver + Ray - background) | QPS {cores} cores allow at that cost |",
             "|---" * 8 + "|"]
    for target in result["targets"]:
        single, concurrent = medians[target["label"]]["single"], medians[target["label"]]["concurrent"]
        cost = _cpu_ms_per_query(concurrent, background)
        lines.append(f"| {target['label']} | {single['qps']:,.0f} | {concurrent['qps']:,.0f} | "
                     f"{concurrent['qps'] / single['qps']:.2f}x | {concurrent['qps'] / embedded:.2f}x | "
                     f"{_busy(concurrent)} | {cost:.2f} | {cores * 1000.0 / cost:,.0f} |")
    return lines


def _busy(row: Dict[str, Any]) -> str:
    """The machine's busy cores during a measurement, and whose."""
    return (f"{row['driver_cores'] + row['ray_cores'] + row['other_cores']:.2f} = {row['driver_cores']:.2f} + "
            f"{row['ray_cores']:.2f} + {row['other_cores']:.2f}")


def _scaling(result: Dict[str, Any], summary: Dict[str, Any], clients: int, cores: int) -> List[str]:
    """What the cores say about one dataset's scaling, in sentences built from its numbers."""
    medians = summary["medians"]
    clusters = cluster_labels(result)
    concurrent = {label: medians[label]["concurrent"] for label in [EMBEDDED, *clusters]}
    busy = {label: row["driver_cores"] + row["ray_cores"] + row["other_cores"] for label, row in concurrent.items()}
    embedded, embedded_single = concurrent[EMBEDDED], medians[EMBEDDED]["single"]
    background = embedded["ray_cores"]
    lines = [f"- The embedded database is one process: its {clients} client threads used "
             f"{embedded['driver_cores']:.2f} cores and answered {embedded['qps']:,.0f} queries/s, "
             f"{embedded['qps'] / embedded_single['qps']:.2f}x what one client got on "
             f"{embedded_single['driver_cores']:.2f} cores."]
    saturated = [label for label in clusters if busy[label] >= SATURATED * cores]
    if saturated:
        lines.append(f"- {len(saturated)} of {len(clusters)} cluster configurations had at least {SATURATED:.0%} of "
                     f"the {cores} cores busy (driver, Ray and other work together) at {clients} clients "
                     f"({', '.join(saturated)}): there the cores set the QPS; a shard or a replica more only shares "
                     "them.")
    unsaturated = [label for label in clusters if label not in saturated]
    if unsaturated:
        lines.append(f"- Below {SATURATED:.0%} of the cores at {clients} clients: "
                     + ", ".join(f"{label} ({busy[label]:.2f})" for label in unsaturated)
                     + ": these also waited on something other than CPU (a Python thread at a time in the driver "
                       "or in an actor, or Ray's round trips).")
    with_replica, alone = target_label(REPLICA_GAIN_SHARDS, 1), target_label(REPLICA_GAIN_SHARDS, 0)
    if with_replica in concurrent and alone in concurrent:
        cost = _cpu_ms_per_query(concurrent[alone], background)
        ceiling = cores * 1000.0 / cost
        lines.append(f"- {alone} at {clients} clients spent {cost:.2f} ms of CPU per query (driver and Ray's "
                     f"processes, less the {background:.2f} cores Ray used in the background): at that "
                     f"cost {cores} cores allow at most {ceiling:,.0f} queries/s, "
                     f"{ceiling / concurrent[alone]['qps']:.2f}x the {concurrent[alone]['qps']:,.0f} it answered, "
                     f"whatever replicas are added (the goal asks {REPLICA_GAIN_GOAL:g}x). A replica adds a process, "
                     "with a Python interpreter of its own, not a core; "
                     f"{with_replica} answered {concurrent[with_replica]['qps']:,.0f} at "
                     f"{_cpu_ms_per_query(concurrent[with_replica], background):.2f} ms per query.")
    by_shards = {target["shards"]: target["label"] for target in result["targets"]
                 if target["shards"] is not None and target["replicas"] == 0}
    if len(by_shards) > 1:
        lines.append(f"- Shards without replicas at {clients} clients: "
                     + ", ".join(f"{shards}: {concurrent[label]['qps']:,.0f} queries/s at "
                                 f"{_cpu_ms_per_query(concurrent[label], background):.2f} ms of CPU each"
                                 for shards, label in sorted(by_shards.items()))
                     + ". On one machine a shard more adds no core but more work per query: every search goes to "
                       "every shard, each a Ray call, a graph search for its own best k and an answer to unpickle "
                       "and merge, all on the same cores.")
    return lines


def markdown(document: Document, summaries: List[Dict[str, Any]], plot_file: str) -> str:
    """The report of ``document``; ``summaries`` are bench.cluster.analysis.summary's, one per dataset."""
    params, machine = document["params"], document["machine"]
    clients, batch = params["clients"], params["batch_queries"]
    cores = machine.get("usable_cores") or 0
    lines = [
        "# vecdb.cluster against embedded vecdb: the Ray hop, batches, replicas, recall", "",
        f"Measured {document['measured_at']} on {machine.get('cpu_model', 'this machine')} ({cores} usable cores, "
        f"{machine.get('memory_gib', '?')} GiB); vecdb {machine['libraries'].get('vecdb-engine')}, "
        f"ray {document.get('ray_version')}. The whole run took {document['seconds'] / 60:.0f} minutes.", "",
        f"Reproduce: `{document['command']}` in a loopback-only network namespace (`make bench-cluster` does both).",
        "", "## Setup", "",
        "- Targets: the **embedded** database (`vecdb.open` in a folder, in this process) and one "
        "`vecdb.cluster.open(path, shards=S, replicas=R)` per configuration, on a local Ray the run starts (each "
        "shard and each replica is an actor process on this machine; the driver is this process). Every target "
        f"gets the same vectors in batches of {params['ingest_batch']:,} through `collection.upsert` (ids = row "
        f"numbers, no payloads) into an HNSW collection with M={params['hnsw_m']}, "
        f"ef_construction={params['ef_construction']}; **ingest pts/s** is the points over the time of all "
        "upserts (a cluster's upsert returns once every shard committed its part and its replicas caught up). "
        "One folder per shard count, filled with the fewest replicas measured; the configurations with more "
        "replicas reopen it (replicas read the shard's folder, they hold nothing of their own).",
        f"- Equal ef: the search ef is the smallest of {params['ef_candidates']} at which the embedded collection "
        f"reaches recall@{params['k']} >= {params['target_recall']} over the queries; every cluster searches with "
        f"the same ef. **recall@{params['k']}** is each target's over all queries at that ef (batches of {batch}; "
        "with replicas the calls take turns between a shard's actors), tie-aware (bench/recall.py).",
        f"- Measurements, every call `collection.search(..., k={params['k']}, ef=ef, with_payload=False)`: "
        "**single**: one query (a 1-D vector) per call from one client; **batch**: blocks of "
        f"{batch} consecutive queries per call from one client; **{clients}-client**: {clients} client threads "
        f"in the driver process, one query per call. {params['warmup_seconds']:g} s of warm-up, then "
        f"{params['duration_seconds']:g} s measured; calls that ended in the window count. QPS counts queries, "
        "p50/p99 are per call (per batch for batches).",
        "- Driver overhead: **Ray hop** = the cluster's single-query p50 minus the embedded one's; **batch "
        "overhead** = the cluster's batch p50 over the embedded one's, minus 1. Both are taken within each round "
        "(the embedded database is measured in every round too) and the median over rounds is shown.",
        f"- Rounds: {params['rounds']}; every target is measured in every round, in build order on odd rounds and "
        "reversed on even ones. Tables show medians over rounds; every round's QPS is listed below each table.",
        "- Cores: **driver** is this process (the client threads, and for a cluster the pickling, Ray calls and "
        "merging), **Ray** every process below it (the shards' and replicas' actors, the raylet, the GCS), "
        f"**other** the rest of the machine (other work: above {OTHER_LOAD_WARNING} a measurement was disturbed). "
        "A target is open only while it is measured (each actor is a process, and idle ones poll), so Ray's "
        "figure in the embedded rows is what Ray's own processes (raylet, GCS, agents) use in the background.",
    ]
    for result, summary in zip(document["datasets"], summaries):
        info, ef = result["dataset"], result["ef"]
        sweep = ", ".join(f"{point['ef']:g}: {point['recall']:.4f}" for point in ef["sweep"])
        lines += ["", f"## {info['name']} ({info['n_base']:,} x {info['dim']}, {info['metric']}, "
                      f"{info['n_queries']:,} queries)", "",
                  f"Search ef = {ef['ef']} (embedded recall@{params['k']} by ef: {sweep}). Took "
                  f"{result['seconds'] / 60:.0f} minutes. {_floor(result)}", "",
                  *_results_table(result, summary, params['k'], clients, batch), "",
                  *_rounds_table(result, summary, clients, batch)]
        disturbed = sorted({f"{run['target']} {run['mode']} round {run['round']} ({run['other_cores']:.2f})"
                            for run in result["runs"] if run["other_cores"] > OTHER_LOAD_WARNING})
        if disturbed:
            lines += ["", f"Other work used more than {OTHER_LOAD_WARNING} cores during: {'; '.join(disturbed)}."]
    lines += ["", f"![QPS of each cluster configuration over the embedded database's]({plot_file})", "",
              "## Goals", "", "Medians over rounds, every round's value in parentheses.", "",
              "| goal | dataset | measured | verdict |", "|---|---|---|---|"]
    for summary in summaries:
        for goal in summary["goals"]:
            lines.append(f"| {goal['goal']} | {goal['dataset']} | {goal['measured']} | {_verdict(goal['met'])} |")
    lines += ["", f"## Where {cores} cores bound the scaling", ""]
    for result, summary in zip(document["datasets"], summaries):
        lines += [f"### {result['dataset']['name']}", "", *_cores_table(result, summary, clients, cores), "",
                  *_scaling(result, summary, clients, cores), ""]
    return "\n".join(lines).rstrip() + "\n"
