"""The temporal protocol: "what will this shopper buy next?".

A random split asks a model to recover items hidden at random from a shopper's history; a shop
asks what the shopper will buy *after today*. :func:`split_temporal` cuts the log at a moment
``cut``: everything before it is history, the purchases of the following ``window_days`` are the
truth. Held-out shoppers (test, validation) are chosen by a stable hash of their id, so a shopper
held out today is held out tomorrow on a grown log and no model ever trains on them.

Every model-input matrix (training rows, held-out histories) is made by the one builder,
:func:`recommendations.ml.data.build_interaction_matrix` (event weights, time decay measured
from ``cut``, ``aggregate="sum"``): the same rows :func:`recommendations.ml.data.build_rows`
gives a shopper at serving time.

Baselines here: :func:`buy_again_scores` and :func:`recent_popularity_scores`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data import build_interaction_matrix

#: Added to ``last_bought_days`` so that an item bought at the very moment of the cut (0 days)
#: is still a stored entry of the sparse matrix.
DAYS_EPS = 1e-3


@dataclass(frozen=True)
class HeldOut:
    """Held-out shoppers' view of the split: rows aligned with ``user_ids``, columns with the
    split's ``item_ids``.

    ``last_bought_days`` holds days between the item's last purchase and the cut **plus**
    :data:`DAYS_EPS` (so a purchase at the cut is not an implicit zero); stored only where
    ``bought``.
    """

    user_ids: np.ndarray
    history: sp.csr_matrix
    truth: sp.csr_matrix
    bought: sp.csr_matrix
    orders: sp.csr_matrix
    last_bought_days: sp.csr_matrix

    @property
    def n_users(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True)
class TemporalSplit:
    """Result of :func:`split_temporal`; every matrix has the columns ``item_ids``."""

    cut: pd.Timestamp
    window_days: float
    item_ids: np.ndarray
    train: sp.csr_matrix
    train_user_ids: np.ndarray
    validation: HeldOut
    test: HeldOut
    recent_popularity: np.ndarray

    def repeat_share(self, part: str = "test") -> float:
        """Share of the truth (user, item) pairs the shopper had already bought before the cut."""
        h: HeldOut = getattr(self, part)
        n = h.truth.nnz
        if n == 0:
            return float("nan")
        both = h.truth.multiply(h.bought > 0)
        return float(both.nnz / n)


def heldout_bucket(user_id: object, salt: str = "") -> float:
    """A stable pseudo-random number in [0, 1) for a shopper id.

    blake2b of ``salt + str(id)``, not Python's ``hash()`` (salted per process): the same
    shopper lands in the same bucket in every run, on every machine, whatever else the log holds.
    """
    digest = hashlib.blake2b(f"{salt}{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps (a naive log is read as UTC)."""
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", utc=True)
    return pd.to_datetime(values, utc=True)


def _utc(t: object) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _pair_matrix(pairs: pd.DataFrame, value: str, users: np.ndarray,
                 items: np.ndarray) -> sp.csr_matrix:
    """A users x items float32 CSR of ``pairs[value]`` at (user, item); other pairs dropped."""
    r = pd.Index(users).get_indexer(pairs["user"])
    c = pd.Index(items).get_indexer(pairs["item"])
    ok = (r >= 0) & (c >= 0)
    M = sp.csr_matrix((pairs[value].to_numpy(np.float32)[ok], (r[ok], c[ok])),
                      shape=(len(users), len(items)), dtype=np.float32)
    M.sum_duplicates()
    M.sort_indices()
    return M


def _prepare(frame: pd.DataFrame, purchase_event: str) -> pd.DataFrame:
    missing = [c for c in ("user", "item", "timestamp") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the temporal protocol needs columns user, item and timestamp; the log lacks "
            f"{missing}")
    df = frame
    if "quantity" in df.columns:  # returns / cancellations, as build_interaction_matrix does
        df = df[pd.to_numeric(df["quantity"], errors="coerce").fillna(1) > 0]
    df = df.dropna(subset=["user", "item", "timestamp"]).copy()
    df["timestamp"] = _timestamps(df["timestamp"])
    # which rows are purchases (truth, orders, recency); the builder still sees the log as
    # given, so a log without events weighs each row 1 as build_rows does at serving time
    df["_purchase"] = (df["event"] == purchase_event) if "event" in df.columns else True
    if "basket" not in df.columns:  # one order = one shopper at one moment
        df["basket"] = df["user"].astype(str) + "@" + df["timestamp"].astype(str)
    return df


def _held_out(before: pd.DataFrame, window: pd.DataFrame, users: np.ndarray,
              items: np.ndarray, cut: pd.Timestamp, weights: Mapping[str, float] | None,
              half_life_days: float | None, min_truth: int) -> HeldOut:
    b = before[before["user"].isin(users)]
    history = build_interaction_matrix(
        b, event_weights=weights, aggregate="sum", half_life_days=half_life_days, now=cut,
        item_ids=items, user_ids=users).X
    w = window[window["_purchase"] & window["user"].isin(users)]
    truth_pairs = w[["user", "item"]].drop_duplicates().assign(v=1.0)
    truth = _pair_matrix(truth_pairs, "v", users, items)
    truth.data[:] = 1.0
    keep = (np.diff(truth.indptr) >= max(min_truth, 1)) & (np.diff(history.indptr) > 0)
    users = users[keep]
    history, truth = history[keep], truth[keep]
    p = b[b["_purchase"] & b["user"].isin(users)]
    per = p.groupby(["user", "item"], sort=False).agg(
        orders=("basket", "nunique"), last=("timestamp", "max")).reset_index()
    per["days"] = (cut - per["last"]).dt.total_seconds() / 86400.0 + DAYS_EPS
    per["one"] = 1.0
    return HeldOut(
        user_ids=users, history=history, truth=truth,
        bought=_pair_matrix(per, "one", users, items),
        orders=_pair_matrix(per, "orders", users, items),
        last_bought_days=_pair_matrix(per, "days", users, items))


def split_temporal(
    frame: pd.DataFrame,
    *,
    cut: object = None,
    window_days: float = 30.0,
    test_fraction: float = 0.1,
    validation_fraction: float = 0.1,
    event_weights: Mapping[str, float] | None = None,
    half_life_days: float | None = None,
    salt: str = "",
    purchase_event: str = "purchase",
    min_truth: int = 1,
    fold: int = 0,
) -> TemporalSplit:
    """Cut the log at ``cut``; the purchases of ``[cut, cut + window_days)`` are the truth.

    ``frame``: columns ``user``, ``item``, ``timestamp`` (required), optional ``event`` (absent:
    every row is a purchase), ``basket`` (order id; absent: one shopper at one timestamp is one
    order), ``quantity`` (rows <= 0 are returns and dropped). ``cut`` defaults to the last
    timestamp minus ``window_days``.

    Shoppers with :func:`heldout_bucket` < ``test_fraction`` are the test shoppers, the next
    ``validation_fraction`` the validation shoppers; both keep only shoppers with at least
    ``min_truth`` purchases (of kept items) in the window and some event before the cut.
    ``fold`` rotates the buckets by ``fold * test_fraction``: folds ``0 .. round(1 /
    test_fraction) - 1`` make every shopper a test shopper exactly once (cross-validation
    over shoppers; ``fold=0`` is the plain split), the validation shoppers following the
    fold's test range. Everybody else with events before the cut trains. Columns: the items
    training shoppers interacted with before the cut (a model cannot score an item it never
    saw).
    """
    if not (test_fraction > 0 and validation_fraction >= 0
            and test_fraction + validation_fraction < 1):
        raise ValueError("need 0 < test_fraction, 0 <= validation_fraction, sum < 1")
    df = _prepare(frame, purchase_event)
    if df.empty:
        raise ValueError("the log has no usable rows")
    cut_ts = _utc(cut) if cut is not None else df["timestamp"].max() - pd.Timedelta(
        days=window_days)
    end = cut_ts + pd.Timedelta(days=window_days)
    before = df[df["timestamp"] < cut_ts]
    window = df[(df["timestamp"] >= cut_ts) & (df["timestamp"] < end)]

    users = pd.unique(df["user"])
    buckets = np.fromiter((heldout_bucket(u, salt) for u in users), np.float64, len(users))
    buckets = np.mod(buckets - fold * test_fraction, 1.0)
    test_users = users[buckets < test_fraction]
    val_users = users[(buckets >= test_fraction)
                      & (buckets < test_fraction + validation_fraction)]
    held = set(test_users.tolist()) | set(val_users.tolist())

    train_rows = before[~before["user"].isin(held)]
    train_im = build_interaction_matrix(
        train_rows, event_weights=event_weights, aggregate="sum",
        half_life_days=half_life_days, now=cut_ts)
    items = train_im.item_ids

    recent = train_rows[train_rows["_purchase"]
                        & (train_rows["timestamp"] >= cut_ts - pd.Timedelta(days=window_days))]
    lines = recent[["basket", "item"]].drop_duplicates()
    counts = lines["item"].value_counts()
    recent_pop = counts.reindex(pd.Index(items)).fillna(0).to_numpy(np.float64)

    def part(u: np.ndarray) -> HeldOut:
        return _held_out(before, window, np.sort(u), items, cut_ts, event_weights,
                         half_life_days, min_truth)

    return TemporalSplit(
        cut=cut_ts, window_days=float(window_days), item_ids=items, train=train_im.X,
        train_user_ids=train_im.user_ids, validation=part(val_users), test=part(test_users),
        recent_popularity=recent_pop)


# --- baselines ----------------------------------------------------------------------------


def recent_popularity_scores(split: TemporalSplit, n_users: int) -> np.ndarray:
    """``pop``: this window's best sellers (orders per item among training shoppers in the
    ``window_days`` before the cut: current demand, not all-time sales), same for everyone."""
    return np.tile(split.recent_popularity.astype(np.float32), (n_users, 1))


def buy_again_scores(held: HeldOut, recent_popularity: np.ndarray) -> np.ndarray:
    """``buy_again``: the shopper's own purchased items first, by number of orders, ties by the
    most recent purchase, then the rest of the catalogue by ``recent_popularity``.

    float64 so the lexicographic key (orders, recency, popularity) survives: bought items get
    ``2 + orders * 1e6 - days`` (days < 1e6), others a popularity in [0, 1).
    """
    n_users = held.truth.shape[0]
    pop = np.asarray(recent_popularity, np.float64)
    base = pop / (pop.max() + 1.0) if pop.size else pop
    S = np.tile(base, (n_users, 1))
    orders = held.orders.tocoo()
    last = sp.csr_matrix(held.last_bought_days)
    days = np.asarray(last[orders.row, orders.col]).ravel()
    S[orders.row, orders.col] = 2.0 + orders.data.astype(np.float64) * 1e6 - days
    return S
