"""Interaction matrices and the strong-generalisation split.

Everything downstream (models, metrics, similarity jobs) works on integer row/column indices of a
``scipy.sparse.csr_matrix``; this module is the only place that knows the shop's raw ids, so the
raw-id <-> index maps live in :class:`InteractionMatrix` next to the matrix they describe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Default strength of each event type. A purchase is the strongest evidence of preference, a
#: cart addition is intent, a view is weak curiosity; a cart removal carries no positive signal,
#: so weight 0 means "ignored" (it does not cancel the earlier add_to_cart either: the user still
#: showed interest in the item). A negative weight is a veto: "not interested" removes the
#: item from the shopper's row whatever else they did with it (a sum would let three views
#: outvote the dismissal, and time decay would fade it; the shopper said no for good).
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "add_to_cart": 3.0,
    "remove_from_cart": 0.0,
    "purchase": 5.0,
    "not_interested": -1.0,
}

#: Default time decay of the input, in days: the best of none / 30 / 90 / 365 on
#: online-retail's validation shoppers (bench/results/ml_experiments_temporal.md).
DEFAULT_HALF_LIFE_DAYS = 30.0

AGGREGATIONS = ("max", "sum")


@dataclass(frozen=True)
class InteractionMatrix:
    """A user x item matrix plus the raw ids of its rows and columns.

    ``user_ids[i]`` is the raw id of row ``i``; ``item_ids[j]`` the raw id of column ``j``.
    """

    X: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    _user_index: dict = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    _item_index: dict = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape

    def user_index(self) -> dict:
        """Raw user id -> row index (built lazily, cached)."""
        if self._user_index is None:
            object.__setattr__(self, "_user_index", {u: i for i, u in enumerate(self.user_ids)})
        return self._user_index

    def item_index(self) -> dict:
        """Raw item id -> column index (built lazily, cached)."""
        if self._item_index is None:
            object.__setattr__(self, "_item_index", {v: j for j, v in enumerate(self.item_ids)})
        return self._item_index

    def binarized(self) -> InteractionMatrix:
        """Same ids, every stored positive value replaced by 1 (training usually wants this)."""
        X = self.X.copy()
        X.data = np.ones_like(X.data)
        X.eliminate_zeros()
        return InteractionMatrix(X, self.user_ids, self.item_ids)


def _event_weights(frame: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    if "event" not in frame.columns:
        return np.ones(len(frame), dtype=np.float64)
    events = frame["event"].astype(str)
    unknown = sorted(set(events.unique()) - set(weights))
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {sorted(weights)}")
    return events.map(dict(weights)).to_numpy(dtype=np.float64)


def _decay(timestamps: pd.Series, half_life_days: float, now: pd.Timestamp | None) -> np.ndarray:
    ts = pd.to_datetime(timestamps, utc=True)
    # "now" defaults to the newest event, not the wall clock, so that the matrix is a pure
    # function of the log (reproducible, testable).
    ref = ts.max() if now is None else pd.Timestamp(now)
    if ref.tzinfo is None:
        ref = ref.tz_localize("UTC")
    age_days = (ref - ts).dt.total_seconds().to_numpy(dtype=np.float64) / 86400.0
    return np.power(0.5, np.clip(age_days, 0.0, None) / half_life_days)


def build_interaction_matrix(
    frame: pd.DataFrame,
    event_weights: Mapping[str, float] | None = None,
    aggregate: str = "max",
    half_life_days: float | None = None,
    now: pd.Timestamp | str | None = None,
    binary: bool = False,
    item_ids: np.ndarray | Sequence | None = None,
    user_ids: np.ndarray | Sequence | None = None,
) -> InteractionMatrix:
    """Turn an interaction log into a float32 CSR user x item matrix.

    ``frame`` needs columns ``user`` and ``item``; ``event`` (see :data:`DEFAULT_EVENT_WEIGHTS`)
    is optional (absent = every row is one positive of weight 1); ``timestamp`` is needed only for
    time decay; a ``quantity`` column, if present, only filters rows with ``quantity <= 0``
    (returns/cancellations): a bulk order of 100 napkins is not 100 times the preference.

    Per (user, item) the event weights are combined with ``aggregate``:

    * ``"max"`` (default) - the strongest thing the user did with the item. Robust: ten views do
      not outweigh one purchase, and a log replayed twice gives the same matrix.
    * ``"sum"`` - accumulates repeated evidence (useful when repeat purchases matter).

    With ``half_life_days`` every event's weight is multiplied by ``0.5 ** (age / half_life)``
    before aggregation, age measured from ``now`` (default: the newest event in the log).
    Rows whose final weight is 0 (e.g. only ``remove_from_cart``) are dropped; users/items that
    end up with no positive interaction do not get a row/column. An event of negative weight
    (``not_interested``) vetoes its (user, item) pair: none of that pair's events count.

    ``item_ids`` / ``user_ids`` fix the columns / rows to a GIVEN index, in that order (a model's
    catalogue, a list of held-out shoppers): events of other items/users are dropped and a
    given user/item without events gets an empty row/column. This is how the temporal split
    and serving-time fold-in build their rows with exactly the weighting used for training.
    """
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {AGGREGATIONS}, got {aggregate!r}")
    missing = {"user", "item"} - set(frame.columns)
    if missing:
        raise ValueError(f"interaction frame lacks columns {sorted(missing)}")
    df = frame
    if "quantity" in df.columns:
        df = df[pd.to_numeric(df["quantity"], errors="coerce").fillna(1) > 0]
    w = _event_weights(df, DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
    veto = w < 0  # read before decay: a dismissal never fades
    if half_life_days is not None:
        if half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        if "timestamp" not in df.columns:
            raise ValueError("time decay needs a 'timestamp' column")
        w = w * _decay(df["timestamp"], half_life_days, now)
    tmp = pd.DataFrame({"user": df["user"].to_numpy(), "item": df["item"].to_numpy(), "w": w})
    if veto.any():  # pairs compared only among the vetoing shoppers' rows: few
        vetoed = pd.MultiIndex.from_frame(tmp.loc[veto, ["user", "item"]])
        suspects = np.flatnonzero(tmp["user"].isin(vetoed.get_level_values(0)).to_numpy())
        pairs = pd.MultiIndex.from_frame(tmp.iloc[suspects][["user", "item"]])
        tmp = tmp.drop(tmp.index[suspects[pairs.isin(vetoed)]])
    tmp = tmp[tmp["w"] > 0]
    if item_ids is not None:
        tmp = tmp[tmp["item"].isin(pd.Index(item_ids))]
    if user_ids is not None:
        tmp = tmp[tmp["user"].isin(pd.Index(user_ids))]
    agg = tmp.groupby(["user", "item"], sort=False)["w"].agg(aggregate).reset_index()
    if user_ids is None:
        user_codes, user_ids = pd.factorize(agg["user"], sort=True)
    else:
        user_codes = pd.Index(user_ids).get_indexer(agg["user"])
    if item_ids is None:
        item_codes, item_ids = pd.factorize(agg["item"], sort=True)
    else:
        item_codes = pd.Index(item_ids).get_indexer(agg["item"])
    values = np.ones(len(agg), np.float32) if binary else agg["w"].to_numpy(np.float32)
    X = sp.csr_matrix(
        (values, (user_codes, item_codes)), shape=(len(user_ids), len(item_ids)), dtype=np.float32
    )
    X.sort_indices()
    return InteractionMatrix(X, np.asarray(user_ids), np.asarray(item_ids))


def build_rows(
    frame: pd.DataFrame,
    item_ids: np.ndarray | Sequence,
    event_weights: Mapping[str, float] | None = None,
    half_life_days: float | None = None,
    now: pd.Timestamp | str | None = None,
) -> sp.csr_matrix:
    """Model-input rows over a model's columns ``item_ids``: fold-in at serving time.

    The same builder as training (:func:`build_interaction_matrix`, ``aggregate="sum"``, the
    event weights and time decay), so a shopper scored live sees exactly the input the
    temporal evaluation gave its held-out shoppers. Without a ``user`` column the frame is one
    shopper and the result has one row; otherwise one row per user, sorted by raw id. Items
    outside ``item_ids`` are dropped (the model cannot score them).
    """
    df = frame if "user" in frame.columns else frame.assign(user=0)
    users = None if "user" in frame.columns else np.array([0])
    if df.empty:
        return sp.csr_matrix((0 if users is None else 1, len(item_ids)), dtype=np.float32)
    return build_interaction_matrix(
        df, event_weights=event_weights, aggregate="sum", half_life_days=half_life_days,
        now=now, item_ids=item_ids, user_ids=users).X


def binarize(X: sp.spmatrix) -> sp.csr_matrix:
    """A float32 CSR copy with every stored non-zero set to 1."""
    B = sp.csr_matrix(X, dtype=np.float32, copy=True)
    B.eliminate_zeros()
    B.data[:] = 1.0
    return B


@dataclass(frozen=True)
class StrongSplit:
    """Result of :func:`split_strong`.

    ``train`` holds all items of the training users; ``validation`` and ``test`` are
    ``(fold_in, truth)`` pairs for disjoint sets of held-out users. All matrices share the same
    columns: ``item_index[j]`` is the column of the *input* matrix that column ``j`` came from.
    ``*_users`` are row indices into the input matrix.
    """

    train: sp.csr_matrix
    validation: tuple[sp.csr_matrix, sp.csr_matrix]
    test: tuple[sp.csr_matrix, sp.csr_matrix]
    item_index: np.ndarray
    train_users: np.ndarray
    validation_users: np.ndarray
    test_users: np.ndarray


def _fold_in_truth(
    H: sp.csr_matrix, fold_in_fraction: float, rng: np.random.Generator
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Randomly partition each row's items into fold-in and truth (both non-empty)."""
    fi_rows, fi_cols, fi_vals, tr_rows, tr_cols, tr_vals = [], [], [], [], [], []
    kept: list[int] = []
    for r in range(H.shape[0]):
        lo, hi = H.indptr[r], H.indptr[r + 1]
        n = hi - lo
        if n < 2:
            continue  # cannot have both a history and something to predict
        n_truth = min(n - 1, max(1, round((1.0 - fold_in_fraction) * n)))
        perm = rng.permutation(n)
        truth_mask = np.zeros(n, bool)
        truth_mask[perm[:n_truth]] = True
        cols, vals = H.indices[lo:hi], H.data[lo:hi]
        row = len(kept)
        kept.append(r)
        fi_rows.append(np.full(n - n_truth, row))
        fi_cols.append(cols[~truth_mask])
        fi_vals.append(vals[~truth_mask])
        tr_rows.append(np.full(n_truth, row))
        tr_cols.append(cols[truth_mask])
        tr_vals.append(vals[truth_mask])
    shape = (len(kept), H.shape[1])

    def mk(rows: list, cols: list, vals: list) -> sp.csr_matrix:
        if not rows:
            return sp.csr_matrix(shape, dtype=np.float32)
        M = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=shape, dtype=np.float32,
        )
        M.sort_indices()
        return M

    return (mk(fi_rows, fi_cols, fi_vals), mk(tr_rows, tr_cols, tr_vals),
            np.asarray(kept, dtype=np.int64))


def split_strong(
    X: sp.spmatrix | InteractionMatrix,
    n_heldout_users: int | None = None,
    fraction: float = 0.1,
    fold_in_fraction: float = 0.8,
    min_items: int = 5,
    seed: int = 0,
) -> StrongSplit:
    """Strong generalisation split (Liang et al. 2018): held-out users are unseen at training.

    Users with fewer than ``min_items`` interactions are dropped. The remaining users are shuffled
    with ``seed``; ``n_heldout_users`` (or ``fraction`` of them) go to validation, as many again
    to test, the rest to training. Only items with at least one training interaction are kept
    (a model cannot score a column it never saw). Each held-out user's kept items are split at
    random into ``fold_in_fraction`` fold-in (the history the model sees) and the rest as truth;
    held-out users left with fewer than 2 kept items are dropped. Deterministic given ``seed``.
    """
    M = X.X if isinstance(X, InteractionMatrix) else X
    M = sp.csr_matrix(M, dtype=np.float32)
    M.eliminate_zeros()
    if not 0.0 < fold_in_fraction < 1.0:
        raise ValueError("fold_in_fraction must be in (0, 1)")
    counts = np.diff(M.indptr)
    eligible = np.flatnonzero(counts >= min_items)
    rng = np.random.default_rng(seed)
    users = rng.permutation(eligible)
    n_held = int(n_heldout_users) if n_heldout_users is not None else round(
        fraction * len(users))
    if n_held <= 0 or 2 * n_held >= len(users):
        raise ValueError(
            f"cannot hold out {n_held} users twice from {len(users)} eligible users "
            f"(users with >= {min_items} items)")
    val_u, test_u, train_u = users[:n_held], users[n_held:2 * n_held], np.sort(users[2 * n_held:])
    train_full = M[train_u]
    item_index = np.flatnonzero(np.diff(train_full.tocsc().indptr) > 0)
    train = train_full[:, item_index].tocsr()
    out = []
    for held in (np.sort(val_u), np.sort(test_u)):
        H = M[held][:, item_index].tocsr()
        H.sort_indices()
        fi, tr, kept = _fold_in_truth(H, fold_in_fraction, rng)
        out.append((fi, tr, held[kept]))
    train.sort_indices()
    return StrongSplit(
        train=train,
        validation=(out[0][0], out[0][1]),
        test=(out[1][0], out[1][1]),
        item_index=item_index,
        train_users=train_u,
        validation_users=out[0][2],
        test_users=out[1][2],
    )
