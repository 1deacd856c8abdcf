"""Exact TreeSHAP of an XGBoost model from per-leaf tables made once per model: the live path's reasons.

The values are XGBoost's own ``pred_contribs`` (path-dependent TreeSHAP): for each leaf the game is a product, over
the distinct features on its path, of "the row goes this way" (0 or 1) for a feature in the coalition and the cover
fraction otherwise. So a leaf's Shapley values depend only on which of its d path features the row follows: 2**d
patterns, tabled once per leaf (the idea of Fast TreeSHAP v2, Yang 2021). Per row, every node is decided once and
every leaf adds d numbers, for blocks of rows at once (a leaf's table block is read once per block): at depth 6 and
400 trees 0.3-0.8 ms a row on one core where the 15 MB of tables stay in cache, 0.55-0.7 ms in batches and 0.78 ms
for one row on a machine where they do not (2.3-3 ms a row before the blocks), against ~2.8 ms for XGBoost's
recursion; the same numbers to float32 precision (tests/test_treeshap.py). Each leaf reads one scattered cache line,
so a row is bound by memory latency: the leaf 16 ahead is prefetched (session 17, the 10M bench champion, two
threads, tables evicted first as between live batches: one row 1.3-1.9 -> 0.65-1.0 ms, 4 rows 2.9 -> 1.7, 16 rows
5.0 -> 3.0, 64 rows 16 -> 11). Models whose tables would pass
:data:`MAX_TABLE_VALUES` (deep trees) return None and the caller asks XGBoost.
"""
from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
import xgboost as xgb
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

MAX_TABLE_VALUES = 16_000_000  # float32 values (64 MB) per model; depth 6 x 400 trees needs about 4M


@dataclass(frozen=True)
class Tables:
    """One model's nodes and Shapley tables, flattened over its trees (a child always after its parent)."""

    feature: np.ndarray  # per node: split feature (-1 at a leaf)
    threshold: np.ndarray  # per node: float32 split value
    default_left: np.ndarray  # per node: a missing value goes left
    left: np.ndarray  # per node: its children (-1 at a leaf)
    right: np.ndarray
    slot: np.ndarray  # per node: its feature's place among the distinct features of the path down to it
    cat_start: np.ndarray  # per node: start of its category set in `cats` (-1: numeric split)
    cat_len: np.ndarray
    cats: np.ndarray  # categories that go right, per categorical node
    leaf_node: np.ndarray  # per leaf: its node
    slot_start: np.ndarray  # per leaf: its path's distinct features in `slot_feature` (len = leaves + 1)
    slot_feature: np.ndarray
    table_start: np.ndarray  # per leaf: its 2**d x d table in `table`
    table: np.ndarray
    features: int
    halves: tuple[int, int] = (0, 0)  # (node, leaf) where the second half of the trees starts: two threads' shares


def _trees(booster: xgb.Booster) -> list[dict]:
    """The model's trees, when it is a binary gbtree of scalar leaves whose children come after their parents."""
    model = json.loads(booster.save_raw("json"))["learner"]
    params = model["learner_model_param"]
    if int(params.get("num_target", 1)) > 1 or int(params["num_class"]) > 1:
        raise ValueError("one output per row only")
    if model["gradient_booster"].get("name") != "gbtree":
        raise ValueError("gbtree only")
    trees = model["gradient_booster"]["model"]["trees"]
    for tree in trees:
        if int(tree["tree_param"]["size_leaf_vector"]) > 1 or int(tree["tree_param"]["num_deleted"]):
            raise ValueError("scalar leaves and no deleted nodes only")
        if any(-1 < min(pair) <= i or max(pair) == -1 != min(pair)
               for i, pair in enumerate(zip(tree["left_children"], tree["right_children"]))):
            raise ValueError("children after parents only")
    return trees


class _Builder:
    """Accumulates the flattened arrays tree by tree."""

    def __init__(self) -> None:
        self.node = {k: [] for k in ("feature", "threshold", "default_left", "left", "right", "slot", "cat_start",
                                     "cat_len")}
        self.cats: list[float] = []
        self.leaf_node, self.values, self.zeros = [], [], []
        self.slot_start, self.slot_feature, self.table_start = [0], [], [0]
        self.roots: list[tuple[int, int]] = []  # per tree: (its first node, its first leaf)

    def add(self, tree: dict) -> None:
        offset, base = len(self.node["feature"]), len(self.cats)
        self.roots.append((offset, len(self.leaf_node)))
        left, right, hess = tree["left_children"], tree["right_children"], tree["sum_hessian"]
        n = len(left)
        segments = dict(zip(tree["categories_nodes"], zip(tree["categories_segments"], tree["categories_sizes"])))
        slot = [0] * n
        node = self.node
        for i in range(n):
            leaf = left[i] == -1
            seg = segments.get(i) if tree["split_type"][i] == 1 else None
            node["feature"].append(-1 if leaf else tree["split_indices"][i])
            node["left"].append(-1 if leaf else offset + left[i])
            node["right"].append(-1 if leaf else offset + right[i])
            node["cat_start"].append(-1 if seg is None else base + seg[0])
            node["cat_len"].append(0 if seg is None else seg[1])
        node["threshold"] += tree["split_conditions"]
        node["default_left"] += tree["default_left"]
        self.cats += tree["categories"]
        stack = [(0, {}, [])]  # node, feature -> slot on the path down to it, zero fraction per slot
        while stack:
            i, slots, z = stack.pop()
            if left[i] == -1:
                self.leaf_node.append(offset + i)
                self.values.append(tree["split_conditions"][i])
                self.zeros += z
                self.slot_feature += list(slots)
                self.slot_start.append(len(self.slot_feature))
                self.table_start.append(self.table_start[-1] + len(z) * (1 << len(z)))
                continue
            feature = tree["split_indices"][i]
            slot[i] = slots.get(feature, len(slots))
            for child in (left[i], right[i]):
                fraction = hess[child] / hess[i]
                grown = z + [fraction] if slot[i] == len(z) else [f * fraction if s == slot[i] else f
                                                                 for s, f in enumerate(z)]
                stack.append((child, slots | {feature: slot[i]}, grown))
        node["slot"] += slot

    def tables(self, features: int) -> Tables:
        arrays = {k: np.asarray(v, dtype=np.int64) for k, v in self.node.items()}
        arrays["threshold"] = np.asarray(self.node["threshold"], dtype=np.float32)
        arrays["default_left"] = np.asarray(self.node["default_left"], dtype=np.bool_)
        slot_start, table_start = np.asarray(self.slot_start), np.asarray(self.table_start)
        table = np.empty(table_start[-1], dtype=np.float32)
        _fill_tables(np.asarray(self.values, dtype=np.float64), np.asarray(self.zeros, dtype=np.float64), slot_start,
                     table_start, table)
        return Tables(**arrays, cats=np.asarray(self.cats, dtype=np.float64),
                      leaf_node=np.asarray(self.leaf_node), slot_start=slot_start,
                      slot_feature=np.asarray(self.slot_feature), table_start=table_start, table=table,
                      features=features, halves=self.roots[len(self.roots) // 2] if self.roots else (0, 0))


def build_tables(booster: xgb.Booster) -> Tables | None:
    """The model's tables, or None when they would pass MAX_TABLE_VALUES or the model is not a plain binary gbtree."""
    try:
        trees = _trees(booster)
    except (KeyError, ValueError):
        return None
    builder = _Builder()
    for tree in trees:
        builder.add(tree)
        if builder.table_start[-1] > MAX_TABLE_VALUES:
            return None
    return builder.tables(booster.num_features())


@numba.njit(cache=True, nogil=True)
def _fill_tables(values, zeros, slot_start, table_start, table):  # pragma: no cover - compiled
    """Each leaf's Shapley value of each distinct path feature for each pattern of followed features."""
    for leaf in range(values.shape[0]):
        s0 = slot_start[leaf]
        d = slot_start[leaf + 1] - s0
        if d == 0:
            continue
        weight = np.empty(d)  # weight[k] = k! (d-k-1)! / d!
        for k in range(d):
            weight[k] = math.exp(math.lgamma(k + 1) + math.lgamma(d - k) - math.lgamma(d + 1))
        elem = np.empty(d + 1)
        for pattern in range(1 << d):
            for i in range(d):
                # the sum over S within A (the followed features but i) of weight[|S|] * the product of z outside S
                elem[:] = 0.0
                elem[0] = 1.0
                size = 0
                outside = 1.0
                for j in range(d):
                    if j == i:
                        continue
                    zj = zeros[s0 + j]
                    if pattern >> j & 1:
                        size += 1
                        for m in range(size, 0, -1):
                            elem[m] += elem[m - 1] * zj
                    else:
                        outside *= zj
                total = 0.0
                for m in range(size + 1):  # elem[m]: m features of A left out of S
                    total += weight[size - m] * elem[m]
                followed = 1.0 if pattern >> i & 1 else 0.0
                table[table_start[leaf] + pattern * d + i] = values[leaf] * (followed - zeros[s0 + i]) * outside * total


ROW_BLOCK = 16  # rows whose leaves are added together: a leaf's table block is read once per block, not per row
PREFETCH_LEAVES = 16  # how far ahead (in leaves) the table values are asked for


@intrinsic
def _prefetch(typingctx, array, index):  # pragma: no cover - compiled
    """LLVM's prefetch of `array[index]` (read, keep in all cache levels): a hint, it never faults."""
    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(builder.gep(data, [args[1]]), byte_ptr), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()
    return types.void(array, index), codegen


@numba.njit(cache=True, nogil=True)
def _contribs(X, feature, threshold, default_left, left, right, slot, cat_start, cat_len, cats, leaf_node, slot_start,
              slot_feature, table_start, table, out, node_lo, node_hi, leaf_lo, leaf_hi):  # pragma: no cover - compiled
    """Add the Shapley values of the leaves in [leaf_lo, leaf_hi) (whole trees, nodes [node_lo, node_hi)) for each
    row of X into `out` (rows x features).

    Rows go by blocks of ROW_BLOCK, leaves outermost: the tables (15 MB for 400 trees) outgrow a small cache, and a
    row alone would miss it once per leaf. Between live batches the decider's other work evicts them: each leaf's
    values are prefetched PREFETCH_LEAVES leaves ahead, so the misses overlap instead of coming one by one."""
    block = max(min(ROW_BLOCK, X.shape[0]), 1)  # a single row zeroes one column, not sixteen
    missed = np.zeros((node_hi - node_lo, block), dtype=np.int32)  # per node and row: path bits not followed
    for r0 in range(0, X.shape[0], block):
        rows = min(block, X.shape[0] - r0)
        for node in range(node_lo, node_hi):
            f = feature[node]
            if f < 0:
                continue
            bit = np.int32(1) << slot[node]
            for i in range(rows):
                x = X[r0 + i, f]
                if math.isnan(x):
                    goes_left = default_left[node]
                elif cat_start[node] >= 0:
                    code = math.floor(x)  # XGBoost reads a category as the integer part of its code
                    goes_left = True
                    for k in range(cat_start[node], cat_start[node] + cat_len[node]):
                        if cats[k] == code:
                            goes_left = False
                            break
                else:
                    goes_left = x < threshold[node]
                above = missed[node - node_lo, i]
                missed[left[node] - node_lo, i] = above | (0 if goes_left else bit)
                missed[right[node] - node_lo, i] = above | (bit if goes_left else 0)
        for leaf in range(leaf_lo, leaf_hi):
            ahead = leaf + PREFETCH_LEAVES
            if ahead < leaf_hi:  # a leaf's values asked for early: the misses overlap
                d = slot_start[ahead + 1] - slot_start[ahead]
                for i in range(rows):
                    _prefetch(table, table_start[ahead] + (((1 << d) - 1) & ~missed[leaf_node[ahead] - node_lo, i]) * d)
            s0 = slot_start[leaf]
            d = slot_start[leaf + 1] - s0
            if d == 0:
                continue
            full = (1 << d) - 1
            node = leaf_node[leaf]
            for i in range(rows):
                base = table_start[leaf] + (full & ~missed[node - node_lo, i]) * d
                for s in range(d):
                    out[r0 + i, slot_feature[s0 + s]] += table[base + s]


_CACHE: dict[int, tuple[xgb.Booster, Tables | None]] = {}
_LOCK = threading.Lock()


def tables_of(booster: xgb.Booster) -> Tables | None:
    """The booster's tables, made once per booster object (None when its model does not suit them)."""
    with _LOCK:
        found = _CACHE.get(id(booster))
        if found is None or found[0] is not booster:
            if len(_CACHE) > 16:
                _CACHE.clear()
            found = _CACHE[id(booster)] = (booster, build_tables(booster))
        return found[1]


def _xgboost_contribs(booster: xgb.Booster, X: np.ndarray) -> np.ndarray:
    matrix = xgb.DMatrix(X, feature_names=booster.feature_names, feature_types=booster.feature_types,
                         enable_categorical=True)
    return booster.predict(matrix, pred_contribs=True, validate_features=False)


def _run(tables: Tables, X: np.ndarray, out: np.ndarray, half: int | None = None) -> np.ndarray:
    """Add the leaves of every tree (`half` None), or of the first (0) or second (1) half of the trees, into `out`."""
    t = tables
    node, leaf = t.halves
    nodes, leaves = (0, t.feature.shape[0]), (0, t.leaf_node.shape[0])
    if half == 0:
        nodes, leaves = (0, node), (0, leaf)
    elif half == 1:
        nodes, leaves = (node, nodes[1]), (leaf, leaves[1])
    _contribs(X, t.feature, t.threshold, t.default_left, t.left, t.right, t.slot, t.cat_start, t.cat_len, t.cats,
              t.leaf_node, t.slot_start, t.slot_feature, t.table_start, t.table, out, *nodes, *leaves)
    return out


_HELPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fraudlab-treeshap")  # the second half's thread


def contributions(booster: xgb.Booster, X: np.ndarray, threads: int = 1) -> np.ndarray:
    """Exact TreeSHAP values (rows x features, without the bias column) of the float32 model matrix X (categories
    as the model's codes): from the tables when the model suits them, else XGBoost's. `threads` 2: half the trees
    on a helper thread meanwhile (the kernel holds no GIL: a live batch's values in about half the time)."""
    tables = tables_of(booster)
    if tables is None:
        return _xgboost_contribs(booster, X)[:, :-1]
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = np.zeros((X.shape[0], tables.features), dtype=np.float64)
    if threads < 2 or not tables.halves[0]:
        return _run(tables, X, out)
    second = _HELPER.submit(_run, tables, X, np.zeros_like(out), 1)
    _run(tables, X, out, 0)
    return out + second.result()
