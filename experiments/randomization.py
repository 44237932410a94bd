"""Randomization: hashed, permuted-block, batch (exact counts) and cluster assignment to arms.

Everything here is a pure function of recorded inputs (a campaign's salt or seed, the
unit ids, the strata), so an auditor can replay every assignment:

- **simple** (hashed): SHA-1 of ``f"{salt}.{unit_id}"``, the first 15 hex digits scaled
  to [0, 1), the arm whose cumulative weight interval holds it (PlanOut, GrowthBook).
- **blocked** arrivals: per stratum, a sequence of shuffled blocks whose lengths are
  multiples of the allocation ratio; slot k's arm is `arm_for_slot(seed, stratum, k, ...)`.
  The database only hands out slot numbers (an atomic counter per stratum).
- **blocked / complete** lists: in each stratum, every arm gets floor(N p) units and the
  remainder is handed out at random in proportion to the weights (randomizr `block_ra`),
  so counts are exact to within one per arm.
- **cluster**: the clusters are randomized (optionally blocked) and members inherit.

Every assignment carries its arm, stratum, method and probability of that arm.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

import numpy as np

from experiments.bands import BandSpec, BandSpecError, sort_levels, stratum_label

if TYPE_CHECKING:  # pandas is imported where it is used: `nudge randomize` never needs it
    import pandas as pd

Method = Literal["simple", "blocked", "complete", "cluster"]
METHODS: tuple[str, ...] = ("simple", "blocked", "complete", "cluster")

# Allocation ratios with a larger unit than this are refused: a block would be too long
# to balance anything (e.g. weights 0.333 and 0.667 given as decimals).
MAX_RATIO_UNIT = 1000
_HASH_SCALE = 16**15
MISSING_LABEL = "NA"


class RandomizationError(ValueError):
    """Inputs that cannot be randomized (bad weights, a cluster spanning strata...)."""


# ---------------------------------------------------------------------------------------
# Allocation: arms and their weights
# ---------------------------------------------------------------------------------------


def integer_ratio(weights: Sequence[float], max_unit: int = MAX_RATIO_UNIT) -> tuple[int, ...]:
    """The smallest whole-number ratio equal to the weights: 2, 1, 1 -> (2, 1, 1); 0.5, 0.5 -> (1, 1).

    Decimal weights are read as the nearest fraction with a denominator up to 1000.
    """
    fracs = [Fraction(w).limit_denominator(1000) for w in weights]
    if any(f <= 0 for f in fracs):
        raise RandomizationError("weights must be greater than 0")
    lcm = math.lcm(*(f.denominator for f in fracs))
    ints = [int(f * lcm) for f in fracs]
    g = math.gcd(*ints)
    ratio = tuple(i // g for i in ints)
    if sum(ratio) > max_unit:
        raise RandomizationError(
            f"weights {list(weights)} reduce to the ratio {':'.join(map(str, ratio))}, "
            f"a block of {sum(ratio)} slots (at most {max_unit}): use simpler weights"
        )
    return ratio


@dataclass(frozen=True)
class Allocation:
    """The arms of a trial in design order and their relative weights."""

    arms: tuple[str, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        arms = tuple(str(a) for a in self.arms)
        weights = tuple(float(w) for w in self.weights)
        object.__setattr__(self, "arms", arms)
        object.__setattr__(self, "weights", weights)
        if len(arms) < 1:
            raise RandomizationError("give at least one arm")
        if any(not a for a in arms):
            raise RandomizationError("arm names must not be empty")
        if len(set(arms)) != len(arms):
            dup = next(a for a in arms if arms.count(a) > 1)
            raise RandomizationError(f"arm {dup!r} is listed twice")
        if len(weights) != len(arms):
            raise RandomizationError(
                f"{len(weights)} weights for {len(arms)} arms: give one weight per arm"
            )
        if any(not math.isfinite(w) or w <= 0 for w in weights):
            raise RandomizationError("weights must be finite numbers greater than 0")
        integer_ratio(weights)  # refuse ratios that make absurd blocks

    @classmethod
    def equal(cls, arms: Sequence[str]) -> Allocation:
        return cls(tuple(arms), tuple(1.0 for _ in arms))

    @property
    def probabilities(self) -> tuple[float, ...]:
        """Each arm's assignment probability: its weight over the total weight."""
        total = math.fsum(self.weights)
        return tuple(w / total for w in self.weights)

    @property
    def ratio(self) -> tuple[int, ...]:
        return integer_ratio(self.weights)

    @property
    def unit(self) -> int:
        """The shortest balanced block: the sum of the integer ratio (2:1:1 gives 4)."""
        return sum(self.ratio)

    def index(self, arm: str) -> int:
        return self.arms.index(arm)


@dataclass(frozen=True)
class Assignment:
    """One unit's arm, the stratum it was randomized in, how, and with what probability.

    `stratum` is the block the unit was randomized within ('' when the design has no
    strata); `slot` is the permuted-block slot for blocked arrivals (None otherwise).
    """

    arm: str
    stratum: str
    method: Method
    probability: float
    slot: int | None = None


# ---------------------------------------------------------------------------------------
# Simple: hashed assignment
# ---------------------------------------------------------------------------------------


def _cumulative_thresholds(allocation: Allocation) -> list[int]:
    # Exact fractions, so the last threshold is exactly the scale and no value falls past it.
    fracs = [Fraction(w) for w in allocation.weights]
    total = sum(fracs)
    out, acc = [], Fraction(0)
    for f in fracs[:-1]:
        acc += f
        out.append(math.floor(acc / total * _HASH_SCALE))
    return out


def hash_fraction(salt: str, unit_id: object) -> float:
    """PlanOut's unit hash: SHA-1 of `salt.unit_id`, first 15 hex digits over 16**15, in [0, 1)."""
    digest = hashlib.sha1(f"{salt}.{unit_id}".encode(), usedforsecurity=False).digest()
    return (int.from_bytes(digest[:8], "big") >> 4) / _HASH_SCALE


class HashedAssigner:
    """Hashed assignment for one campaign salt and allocation (thresholds computed once)."""

    __slots__ = ("salt", "allocation", "_thresholds", "_prefix", "_assignments")

    def __init__(self, salt: str, allocation: Allocation, stratum: str = "") -> None:
        self.salt = str(salt)
        self.allocation = allocation
        self._thresholds = _cumulative_thresholds(allocation)
        self._prefix = f"{self.salt}."
        probs = allocation.probabilities
        self._assignments = tuple(
            Assignment(arm, stratum, "simple", p)
            for arm, p in zip(allocation.arms, probs, strict=True)
        )

    def arm_index(self, unit_id: object) -> int:
        h = int.from_bytes(
            hashlib.sha1(f"{self._prefix}{unit_id}".encode(), usedforsecurity=False).digest()[:8],
            "big",
        )
        return bisect.bisect_right(self._thresholds, h >> 4)

    def assign(self, unit_id: object) -> Assignment:
        """The unit's assignment (the same every time for the same salt and id)."""
        return self._assignments[self.arm_index(unit_id)]

    def arm_indices(self, unit_ids: Iterable[object]) -> np.ndarray:
        """Arm indices for many units at once (same arms as `assign`)."""
        sha1 = hashlib.sha1
        prefix = self._prefix.encode()
        # The first 8 bytes of each digest, read as big-endian 64-bit numbers, >> 4.
        packed = b"".join([sha1(prefix + str(u).encode()).digest()[:8] for u in unit_ids])
        h = np.frombuffer(packed, dtype=">u8").astype(np.uint64) >> np.uint64(4)
        return np.searchsorted(np.asarray(self._thresholds, dtype=np.uint64), h, side="right")


def hashed_assignment(salt: str, unit_id: object, allocation: Allocation) -> Assignment:
    """Simple randomization of one unit by hashing (no random state, no database)."""
    return HashedAssigner(salt, allocation).assign(unit_id)


# ---------------------------------------------------------------------------------------
# Blocked arrivals: permuted blocks addressed by slot number
# ---------------------------------------------------------------------------------------


def _block_digest(seed: int, stratum: str, block: int) -> bytes:
    return hashlib.sha256(f"nudge-block|{int(seed)}|{stratum}|{int(block)}".encode()).digest()


def block_length(
    seed: int, stratum: str, block: int, allocation: Allocation, block_multiples: Sequence[int]
) -> int:
    """Length of block `block` of a stratum: a multiple of the ratio unit, picked by the seed.

    The choice among `block_multiples` comes from the block's SHA-256, so finding which
    block holds slot k costs one hash per earlier block and no generator.
    """
    multiples = _check_multiples(block_multiples)
    if len(multiples) == 1:
        return allocation.unit * multiples[0]
    pick = int.from_bytes(_block_digest(seed, stratum, block)[:8], "big") % len(multiples)
    return allocation.unit * multiples[pick]


def permuted_block(
    seed: int, stratum: str, block: int, allocation: Allocation, block_multiples: Sequence[int]
) -> np.ndarray:
    """The arm indices of one block, in slot order: the ratio repeated, shuffled.

    The shuffle uses numpy's default generator seeded with a SeedSequence of the SHA-256
    of (seed, stratum, block), so the block is the same on every machine and run.
    """
    length = block_length(seed, stratum, block, allocation, block_multiples)
    repeats = length // allocation.unit
    base = np.repeat(np.arange(len(allocation.arms)), [r * repeats for r in allocation.ratio])
    entropy = int.from_bytes(_block_digest(seed, stratum, block), "big")
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    return rng.permutation(base)


def _check_multiples(block_multiples: Sequence[int]) -> tuple[int, ...]:
    multiples = tuple(int(m) for m in block_multiples)
    if not multiples or any(m < 1 for m in multiples):
        raise RandomizationError("block_multiples must be whole numbers of at least 1")
    return multiples


class _BlockStarts:
    """First slot of each block of one stratum, extended on demand (thread safe)."""

    def __init__(self) -> None:
        self.starts = [0]
        self.lock = threading.Lock()


_block_starts: dict[tuple, _BlockStarts] = {}
_block_starts_lock = threading.Lock()


def slot_position(
    seed: int, stratum: str, slot: int, allocation: Allocation, block_multiples: Sequence[int]
) -> tuple[int, int]:
    """(block number, position inside the block) of a stratum's slot."""
    if slot < 0:
        raise RandomizationError("slots are numbered from 0")
    multiples = _check_multiples(block_multiples)
    if len(multiples) == 1:
        length = allocation.unit * multiples[0]
        return slot // length, slot % length
    key = (int(seed), stratum, allocation.ratio, multiples)
    with _block_starts_lock:
        entry = _block_starts.setdefault(key, _BlockStarts())
    with entry.lock:
        starts = entry.starts
        while starts[-1] <= slot:
            b = len(starts) - 1
            starts.append(starts[-1] + block_length(seed, stratum, b, allocation, multiples))
        b = bisect.bisect_right(starts, slot) - 1
        return b, slot - starts[b]


def arm_for_slot(
    seed: int,
    stratum: str,
    k: int,
    arms: Sequence[str],
    weights: Sequence[float],
    block_multiples: Sequence[int] = (1, 2),
) -> str:
    """The arm at slot `k` of a stratum's permuted-block sequence (a pure function)."""
    allocation = Allocation(tuple(arms), tuple(weights))
    return allocation.arms[slot_arm_index(seed, stratum, k, allocation, block_multiples)]


def slot_arm_index(
    seed: int, stratum: str, k: int, allocation: Allocation, block_multiples: Sequence[int]
) -> int:
    block, pos = slot_position(seed, stratum, k, allocation, block_multiples)
    return int(permuted_block(seed, stratum, block, allocation, block_multiples)[pos])


def block_sequence(
    seed: int, stratum: str, n_slots: int, allocation: Allocation, block_multiples: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Replay a stratum's first `n_slots` slots: (arm index per slot, block number per slot)."""
    arms: list[np.ndarray] = []
    blocks: list[np.ndarray] = []
    filled, b = 0, 0
    while filled < n_slots:
        block = permuted_block(seed, stratum, b, allocation, block_multiples)
        arms.append(block)
        blocks.append(np.full(len(block), b))
        filled += len(block)
        b += 1
    if not arms:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    return np.concatenate(arms)[:n_slots], np.concatenate(blocks)[:n_slots]


def blocked_assignment(
    seed: int,
    stratum: str,
    slot: int,
    allocation: Allocation,
    block_multiples: Sequence[int],
    method: Method = "blocked",
) -> Assignment:
    """The assignment of the unit that took slot `slot` of its stratum."""
    idx = slot_arm_index(seed, stratum, slot, allocation, block_multiples)
    # The blocks realise the integer ratio, so that is the probability (equal to the
    # weight share except for decimal weights the ratio approximates).
    probability = allocation.ratio[idx] / allocation.unit
    return Assignment(allocation.arms[idx], stratum, method, probability, slot)


# ---------------------------------------------------------------------------------------
# Batch: exact counts per stratum (randomizr block_ra), clusters
# ---------------------------------------------------------------------------------------


def complete_counts(n: int, allocation: Allocation, rng: np.random.Generator) -> np.ndarray:
    """How many of n units each arm gets: floor(n p) each, the remainder at random.

    The remainder goes to distinct arms, chosen by systematic sampling over the arms in a
    random order with inclusion probability equal to each arm's fractional part, so each
    arm gets floor(n p) or floor(n p) + 1 and its expected count is exactly n p.
    """
    probs = np.asarray(allocation.probabilities)
    exact = n * probs
    counts = np.floor(exact + 1e-9).astype(np.int64)
    remainder = int(n - counts.sum())
    if remainder > 0:
        frac = np.clip(exact - counts, 0.0, None)
        frac = frac / frac.sum() * remainder
        order = rng.permutation(len(probs))
        edges = np.cumsum(frac[order])
        edges[-1] = remainder  # no rounding gap past the last arm (points are < remainder)
        points = rng.random() + np.arange(remainder)
        picked = order[np.searchsorted(edges, points, side="right")]
        np.add.at(counts, picked, 1)
    return counts


def block_ra(
    strata: np.ndarray,
    allocation: Allocation,
    seed: int,
) -> np.ndarray:
    """Randomize a known list in blocks: arm index per unit, exact counts in every stratum.

    `strata` holds an integer stratum code per unit (one code for complete randomization),
    in the units' canonical order (the caller sorts by unit id so the result does not
    depend on row order). The same codes and seed always give the same arms.
    """
    codes = np.asarray(strata)
    n = len(codes)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if codes.dtype.kind not in "iu":
        import pandas as pd

        codes = pd.factorize(codes, sort=True)[0]
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    # A random order of all units, grouped by stratum: each stratum's units in random order.
    perm = rng.permutation(n)
    keys = codes[perm]
    if len(codes) and 0 <= codes.min() and codes.max() < 2**15:
        keys = keys.astype(np.int16)  # a stable sort of small integers is a radix sort
    order = perm[np.argsort(keys, kind="stable")]
    sizes = np.bincount(codes)
    sequence = np.empty(n, dtype=np.int64)
    start = 0
    for size in sizes:
        if size:
            counts = complete_counts(int(size), allocation, rng)
            sequence[start : start + size] = np.repeat(np.arange(len(counts)), counts)
            start += size
    out = np.empty(n, dtype=np.int64)
    out[order] = sequence
    return out


def cluster_ra(
    clusters: np.ndarray,
    allocation: Allocation,
    seed: int,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """Randomize whole clusters: arm index per unit, every member gets its cluster's arm.

    Clusters are randomized with `block_ra` in the order of their sorted ids, blocked by
    `strata` when given (each cluster must lie in one stratum).
    """
    import pandas as pd

    clusters = np.asarray(clusters)
    if len(clusters) == 0:
        return np.empty(0, dtype=np.int64)
    cluster_codes, uniques = pd.factorize(clusters, sort=True)
    if (cluster_codes < 0).any():
        raise RandomizationError("every unit needs a cluster id (some are missing)")
    if strata is None:
        cluster_strata = np.zeros(len(uniques), dtype=np.int64)
    else:
        strata = np.asarray(strata)
        if strata.dtype.kind not in "iu":
            strata = pd.factorize(strata, sort=True)[0]
        cluster_strata = np.full(len(uniques), -1, dtype=np.int64)
        cluster_strata[cluster_codes] = strata
        mismatch = cluster_strata[cluster_codes] != strata
        if mismatch.any():
            pos = int(np.flatnonzero(mismatch)[0])
            raise RandomizationError(
                f"cluster {str(uniques[cluster_codes[pos]])!r} has members in more than one stratum: "
                "block clusters only by characteristics shared by the whole cluster"
            )
    return block_ra(cluster_strata, allocation, seed)[cluster_codes]


# ---------------------------------------------------------------------------------------
# Strata
# ---------------------------------------------------------------------------------------


def band_specs(strata: Iterable[object]) -> list[BandSpec]:
    """BandSpecs from design strata (`experiments.design.Stratum`) or BandSpecs."""
    specs = []
    for s in strata:
        if isinstance(s, BandSpec):
            specs.append(s)
            continue
        cuts = getattr(s, "cuts", None)
        labels = getattr(s, "labels", None)
        specs.append(
            BandSpec(
                s.moderator,  # type: ignore[attr-defined]
                tuple(float(c) for c in cuts) if cuts else None,
                tuple(labels) if labels else None,
            )
        )
    return specs


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def level_of(spec: BandSpec, value: object) -> str | None:
    """One value's band or level under a spec (None when missing), as `BandSpec.assign` gives."""
    if _missing(value):
        return None
    if spec.cuts is None:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BandSpecError(f"column {spec.column!r}: value {value!r} is not a number") from None
    if math.isnan(x):
        return None
    levels = spec.levels or []
    return levels[bisect.bisect_right(spec.cuts, x)]


def stratum_of(values: Mapping[str, object], specs: Sequence[BandSpec]) -> str:
    """A unit's stratum label from its baseline values, e.g. `age=18-34|self_efficacy=low`."""
    return stratum_label({s.column: level_of(s, values.get(s.column)) for s in specs})


@dataclass(frozen=True)
class Strata:
    """Stratum code per unit and the label of each code."""

    codes: np.ndarray
    labels: list[str]


def stratify(
    columns: Mapping[str, Sequence | np.ndarray | pd.Series],
    specs: Sequence[BandSpec],
    n_units: int | None = None,
) -> Strata:
    """Stratum codes for many units at once (vectorised); labels as `stratum_of` gives.

    `columns` maps each spec's column to its values: numbers or text for a banded column
    (empty text and NaN are missing), anything for a level-by-level column. A banded
    value that is not a number raises BandSpecError naming its 1-based row. With no
    specs, every one of `n_units` units is in the single stratum ''.
    """
    n = None
    for spec in specs:
        if spec.column not in columns:
            raise RandomizationError(f"no column {spec.column!r} for the strata")
        length = len(columns[spec.column])
        if n is not None and length != n:
            raise RandomizationError("stratum columns differ in length")
        n = length
    if not specs:
        return Strata(np.zeros(n_units or 0, dtype=np.int64), [""])
    combined = np.zeros(n or 0, dtype=np.int64)
    level_lists: list[list[str | None]] = []
    for spec in specs:
        codes, levels = _spec_codes(spec, columns[spec.column])
        combined = combined * len(levels) + codes
        level_lists.append(levels)
    if len(combined) and combined.max() < 4 * len(combined) + 1024:
        # Few possible codes: the sorted distinct codes by counting, not by sorting.
        present = np.bincount(combined) > 0
        uniq = np.flatnonzero(present)
        inverse = (np.cumsum(present) - 1)[combined]
    else:
        uniq, inverse = np.unique(combined, return_inverse=True)
    labels = []
    for code in uniq.tolist():
        parts: list[str | None] = []
        for levels in reversed(level_lists):
            code, r = divmod(code, len(levels))
            parts.append(levels[r])
        parts.reverse()
        labels.append(stratum_label({s.column: p for s, p in zip(specs, parts, strict=True)}))
    return Strata(inverse.astype(np.int64).reshape(-1), labels)


def _spec_codes(
    spec: BandSpec, values: Sequence | np.ndarray | pd.Series
) -> tuple[np.ndarray, list]:
    """Integer level codes for one column; the last level is None (missing)."""
    arr = np.asarray(values)
    if spec.cuts is not None:
        numeric = _as_numbers(spec, arr)
        levels: list[str | None] = list(spec.levels or [])
        codes = np.searchsorted(np.asarray(spec.cuts, dtype=float), numeric, side="right")
        codes[np.isnan(numeric)] = len(levels)
        return codes.astype(np.int64), [*levels, None]
    # Level by level: factorize first (hashing, fast), then name each distinct value once.
    import pandas as pd

    fcodes, uniques = pd.factorize(arr.astype(object), use_na_sentinel=True)
    names = [level_of(spec, u) for u in uniques]
    ordered = sort_levels(sorted({n for n in names if n is not None}))
    position = {name: i for i, name in enumerate(ordered)}
    remap = np.array(
        [len(ordered) if n is None else position[n] for n in names] + [len(ordered)],
        dtype=np.int64,
    )
    # fcodes == -1 (NaN / None) indexes the last entry: missing.
    return remap[fcodes], [*ordered, None]


def _as_numbers(spec: BandSpec, arr: np.ndarray) -> np.ndarray:
    """Floats (NaN for missing); a value that is not a number raises naming its row."""
    if arr.dtype.kind in "fiub":
        return arr.astype(float)
    try:
        return arr.astype(float)  # text holding only numbers: the fast path
    except (TypeError, ValueError):
        pass
    import pandas as pd

    series = pd.Series(arr, dtype=object)
    text = series.astype(str).str.strip()
    blank = (series.isna() | (text == "")).to_numpy()
    numeric = pd.to_numeric(text.where(~blank, None), errors="coerce").to_numpy(float)
    bad = np.isnan(numeric) & ~blank
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise BandSpecError(
            f"column {spec.column!r}: value {series.iloc[pos]!r} at row {pos + 1} is not a number"
        )
    return numeric


# ---------------------------------------------------------------------------------------
# A list at once, as a frame
# ---------------------------------------------------------------------------------------


def canonical_order(ids: Sequence | np.ndarray) -> np.ndarray:
    """Positions of the units sorted by id text: batch results ignore the file's row order."""
    import pandas as pd

    text = np.asarray(pd.Series(np.asarray(ids, dtype=object)).astype(str), dtype=object)
    return np.argsort(text, kind="stable")


def randomize_list(
    ids: Sequence | np.ndarray,
    allocation: Allocation,
    seed: int,
    strata: Strata | None = None,
    clusters: Sequence | np.ndarray | None = None,
) -> pd.DataFrame:
    """Batch-randomize a known list: one row per input unit, in input order.

    Columns: `arm`, `stratum`, `method` and `probability`. Units are put in the order of
    their ids first, so the same list in any row order gets the same assignment.
    Raises RandomizationError for duplicate ids.
    """
    import pandas as pd

    ids_arr = np.asarray(ids, dtype=object)
    n = len(ids_arr)
    order = canonical_order(ids_arr)
    sorted_ids = pd.Series(ids_arr[order]).astype(str).to_numpy(dtype=object)
    if n > 1:
        dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
        if len(dup):
            raise RandomizationError(f"unit id {sorted_ids[dup[0]]!r} appears more than once")
    codes = strata.codes if strata is not None else np.zeros(n, dtype=np.int64)
    labels = strata.labels if strata is not None else [""]
    arm_idx = np.empty(n, dtype=np.int64)
    if clusters is not None:
        cl = np.asarray(clusters, dtype=object)[order]
        arm_idx[order] = cluster_ra(cl, allocation, seed, codes[order] if strata else None)
        method: Method = "cluster"
    else:
        arm_idx[order] = block_ra(codes[order], allocation, seed)
        method = "complete" if labels == [""] else "blocked"
    arms = np.asarray(allocation.arms, dtype=object)[arm_idx]
    probs = np.asarray(allocation.probabilities)[arm_idx]
    return pd.DataFrame(
        {
            "arm": arms,
            "stratum": np.asarray(labels, dtype=object)[codes],
            "method": method,
            "probability": probs,
        }
    )


def arm_counts_by_stratum(
    arms: Sequence | np.ndarray | pd.Series,
    strata: Sequence | np.ndarray | pd.Series,
    arm_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Units per arm in every stratum: one row per stratum, one column per arm, plus `total`."""
    import pandas as pd

    frame = pd.DataFrame(
        {"stratum": np.asarray(strata, dtype=object), "arm": np.asarray(arms, dtype=object)}
    )
    table = pd.crosstab(frame["stratum"], frame["arm"])
    if arm_order is not None:
        table = table.reindex(columns=list(arm_order), fill_value=0)
    table.columns.name = None
    table["total"] = table.sum(axis=1)
    return table
