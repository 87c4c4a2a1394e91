"""Proof latency: `Registry.inclusion_proof` / `consistency_proof` at 1M and 10M leaves, against the old way.

One SQLite registry (`Registry.init`: the real schema and its policy entry #0) is grown
through the sizes and measured as it reaches each. It is filled without the ingest pipeline,
which would take an hour at 10M: synthetic event entries (the project's own `Entry.canonical`
bodies, `entry_row` rows and `subtrees.append_leaf` nodes) go in through `LedgerTables.append`, the
registry's own write path, in appends of random sizes, each with its checkpoint, as the
registry writes them.

Then, in process, on the registry reopened with `Registry.open`, each proof is timed with
`time.perf_counter_ns`: inclusion proofs of random entries in the whole ledger, and
consistency proofs between random pairs of sizes (most of them between appends, so their
roots come from the stored nodes, not from a checkpoint). Every timed proof is checked with
`merkle.verify_inclusion` / `verify_consistency` against roots recorded while the ledger was
built.

The anchor, at 1M leaves and below (`--anchor-up-to`): what `Registry.inclusion_proof` did
before, every leaf hash read (`LedgerTables.leaf_hashes`) and `merkle.inclusion_proof` in memory.
Its proofs must equal the registry's, bit for bit.

Prints exactly one JSON line on stdout; progress goes to stderr.

    python bench/bench_proofs.py            # 1M and 10M leaves (about three minutes, 5.5 GB of disk)
    python bench/bench_proofs.py --quick    # 100,000 leaves, for tests and CI
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from _common import emit, note, profiled
from socialcredit.instants import format_instant, now_us
from socialcredit.ledger import merkle, subtrees
from socialcredit.ledger.entries import EVENT, Entry
from socialcredit.registry import Registry
from socialcredit.store import Checkpoint, entry_row

GOAL_MS = 5
APPEND_SIZES = (1, 7, 100, 2_500, 10_000, 40_000)  # entries per append, drawn at random
ENTRIES_PER_SUBJECT = 100  # in runs of seq: the (subject, seq) index, which proofs never read, grows at its end


class Ledger:
    """Builds the synthetic ledger and remembers what a verifier would know: leaves and roots."""

    def __init__(self, registry: Registry, recorded_us: int):
        checkpoint = registry.store.ledger.last_checkpoint()
        self.frontier = merkle.Frontier.from_json(checkpoint.size, checkpoint.frontier)
        self.policy_leaf = registry.store.ledger.leaf_hashes(1)[0]
        self.recorded_us = recorded_us
        self.recorded_at = format_instant(recorded_us)
        self.roots = {}  # size -> root, for the sizes the proofs will be asked about

    def entry(self, seq: int) -> Entry:
        return Entry(seq, EVENT, self.recorded_us, f"1:{seq // ENTRIES_PER_SUBJECT:032x}", "person",
                     "traffic.violation", self.recorded_us, "bench", str(seq), {"offence": "speeding"},
                     attributes_json='{"offence":"speeding"}')

    def leaf(self, seq: int) -> bytes:
        if seq == 0:
            return self.policy_leaf
        return merkle.leaf_hash(self.entry(seq).canonical(self.recorded_at).encode("utf-8"))

    def fill(self, registry: Registry, size: int, wanted_roots: set[int], rng: random.Random) -> int:
        """Append synthetic entries until the ledger holds `size`; return the number of appends."""
        appends = 0
        while self.frontier.size < size:
            start = self.frontier.size
            end = min(size, start + rng.choice(APPEND_SIZES))
            rows, leaves = [], []
            for seq in range(start, end):
                entry = self.entry(seq)
                body = entry.canonical(self.recorded_at)
                leaves.append(merkle.leaf_hash(body.encode("utf-8")))
                rows.append(entry_row(entry, body, leaves[-1]))
            nodes = []
            for leaf in leaves:
                nodes.extend(subtrees.append_leaf(self.frontier, leaf))
                if self.frontier.size in wanted_roots:
                    self.roots[self.frontier.size] = self.frontier.root()
            checkpoint = Checkpoint(self.frontier.size, self.frontier.root(), self.frontier.to_json(), now_us())
            with registry.store.db.write(append=True) as tx:
                registry.store.ledger.append(tx, rows, checkpoint, nodes)
            appends += 1
            if appends % 100 == 0:
                note(f"  {self.frontier.size:,} of {size:,} entries")
        return appends


def timed(call) -> tuple[tuple[float, float], object]:
    """(wall-clock ms, this thread's CPU ms) of one call, and its result.

    On a shared machine the wall clock also counts the time the process waited, for a core or
    the disk; the CPU time does not, so the two apart show how much of a slow call was the machine.
    """
    started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
    result = call()
    return ((time.perf_counter_ns() - started) / 1e6, (time.thread_time_ns() - started_cpu) / 1e6), result


def summary(times: list[tuple[float, float]]) -> dict:
    wall = sorted(t[0] for t in times)
    cpu = sorted(t[1] for t in times)
    return {"median_ms": _median(wall), "p99_ms": _p99(wall), "cpu_median_ms": _median(cpu), "cpu_p99_ms": _p99(cpu)}


def _median(ordered: list[float]) -> float:
    return round(statistics.median(ordered), 4)


def _p99(ordered: list[float]) -> float:
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 4)


def hashes(hex_list: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hex_list]


def measure(url: str, key_file: Path, ledger: Ledger, size: int, appends: int, build_seconds: float,
            indices: list[int], pairs: list[tuple[int, int]], args) -> dict:
    """Time and check the proofs on the registry as it is at `size`, reopened as a reader would."""
    with Registry.open(url, key_file=key_file) as registry:
        note(f"{len(indices):,} inclusion and {len(pairs):,} consistency proofs at {size:,} leaves...")
        load_average = os.getloadavg()[0]
        with profiled(args.profile, f"the proofs at {size:,} leaves"):
            inclusion = [timed(lambda: registry.inclusion_proof(index)) for index in indices]
            consistency = [timed(lambda: registry.consistency_proof(old, new)) for old, new in pairs]
        root = ledger.roots[size]
        failed = 0
        for index, (_took, proof) in zip(indices, inclusion):
            leaf = ledger.leaf(index)
            failed += not (proof.leaf_hash == leaf.hex() and proof.root == root.hex()
                           and merkle.verify_inclusion(leaf, index, size, hashes(proof.proof), root))
        for (old, new), (_took, proof) in zip(pairs, consistency):
            old_root, new_root = ledger.roots[old], ledger.roots[new]
            failed += not (proof.old_root == old_root.hex() and proof.new_root == new_root.hex()
                           and merkle.verify_consistency(old, new, old_root, new_root, hashes(proof.proof)))
        result = {
            "leaves": size,
            "appends": appends,
            "build_seconds": round(build_seconds, 1),
            "db_bytes": Path(registry.store.db.url.path).stat().st_size,
            "proofs": len(indices) + len(pairs),
            "failed_verifications": failed,
            "inclusion": summary([took for took, _ in inclusion]),
            "consistency": summary([took for took, _ in consistency]),
            "load_average": round(load_average, 2),
        }
        note(f"inclusion {result['inclusion']}, consistency {result['consistency']}, {failed} failed")
        if size <= args.anchor_up_to:
            result["anchor"] = anchor(registry, size, indices[: args.anchor_calls], dict(zip(indices, inclusion)))
            result["anchor"]["speedup"] = round(result["anchor"]["inclusion"]["median_ms"]
                                                / result["inclusion"]["median_ms"], 1)
    return result


def anchor(registry: Registry, size: int, indices: list[int], timed_proofs: dict) -> dict:
    """The old way: read every leaf hash, compute the proof in memory; it must match the new one."""
    note(f"anchor: {len(indices)} proofs from all {size:,} leaf hashes...")
    times, mismatches = [], 0
    for index in indices:
        took, proof = timed(lambda: merkle.inclusion_proof(registry.store.ledger.leaf_hashes(size), index))
        times.append(took)
        mismatches += [h.hex() for h in proof] != timed_proofs[index][1].proof
    result = {"calls": len(indices), "mismatches": mismatches, "inclusion": summary(times)}
    note(f"anchor inclusion {result['inclusion']}, {mismatches} differ from the registry's")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 leaves only (a few seconds)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sizes", help="comma-separated ledger sizes (default 1000000,10000000)")
    parser.add_argument("--proofs", type=int, help="proofs of each kind timed per size (default 2000)")
    parser.add_argument("--anchor-up-to", type=int, default=1_000_000, metavar="N",
                        help="run the anchor at sizes up to N (default 1000000)")
    parser.add_argument("--anchor-calls", type=int, default=5, help="anchor proofs per size (default 5)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the timed proofs, print the top N functions by tottime to stderr")
    parser.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the temporary databases go")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [100_000] if args.quick else [1_000_000, 10_000_000])
    args.proofs = args.proofs or (200 if args.quick else 2_000)

    rng = random.Random(args.seed)
    # What each size will be asked, drawn first, so the roots a verifier needs are recorded on the way.
    indices = {size: [rng.randrange(size) for _ in range(args.proofs)] for size in sizes}
    pairs = {size: [tuple(sorted((rng.randrange(1, size + 1), rng.randrange(1, size + 1))))
                    for _ in range(args.proofs)] for size in sizes}
    wanted_roots = set(sizes) | {s for size in sizes for pair in pairs[size] for s in pair}
    results = []
    with tempfile.TemporaryDirectory(prefix="socialcredit-bench-proofs-", dir=args.tmpdir) as folder:
        url, key_file = f"sqlite:///{folder}/registry.db", Path(folder) / "registry.db.key"
        # One registry grown through the sizes: each is measured as the ledger reaches it.
        with Registry.init(url, "rongcheng", key_file=key_file) as writer:
            ledger = Ledger(writer, now_us())
            for size in sorted(sizes):
                note(f"appending up to {size:,} entries...")
                t0 = time.perf_counter()
                appends = ledger.fill(writer, size, wanted_roots, rng)
                build_seconds = time.perf_counter() - t0
                note(f"built in {build_seconds:.1f}s ({appends:,} appends)")
                results.append(measure(url, key_file, ledger, size, appends, build_seconds, indices[size],
                                       pairs[size], args))

    slowest_median = max(r[kind]["median_ms"] for r in results for kind in ("inclusion", "consistency"))
    slowest_p99 = max(r[kind]["p99_ms"] for r in results for kind in ("inclusion", "consistency"))
    report = {
        "bench": "proofs",
        "sizes": results,
        "failed_verifications": sum(r["failed_verifications"] for r in results),
        "anchor_mismatches": sum(r["anchor"]["mismatches"] for r in results if "anchor" in r),
        "slowest_median_ms": slowest_median,
        "slowest_p99_ms": slowest_p99,
        "goal_ms": GOAL_MS,
        "meets_goal": slowest_median < GOAL_MS,
        "meets_goal_p99": slowest_p99 < GOAL_MS,
        "stratum": subtrees.STRATUM,
        "quick": args.quick,
        "profiled": bool(args.profile),
        "seed": args.seed,
    }
    return emit(report)


if __name__ == "__main__":
    main()
