"""Throwaway temporal split for the model experiments while ``ml/temporal.py`` (branch
``ml-eval``) is being written: same idea as its announced API, not its code.

Cut = ``window_days`` before the last day; shoppers with events before the cut and purchases in
the window are the held-out candidates (10 % of shoppers each to validation and test); every
other shopper's pre-cut events train. Matrices: event weight x half-life decay (now = cut),
summed per (shopper, item), through ``data.build_interaction_matrix``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommendations.ml.data import build_interaction_matrix
from recommendations.ml.datasets import NON_PRODUCT_CODES, ONLINE_RETAIL, dataset_path
from recommendations.ml.metrics import exclude_seen, ndcg_at_k


def load_frame(name: str) -> pd.DataFrame:
    """user, item, timestamp, event (purchase), basket."""
    if name == "online-retail":
        df = pd.read_csv(ONLINE_RETAIL, dtype={"InvoiceNo": str, "StockCode": str,
                                               "CustomerID": str})
        codes = df["StockCode"].astype(str).str.strip().str.upper()
        keep = (df["CustomerID"].notna() & ~df["InvoiceNo"].str.startswith("C")
                & (df["Quantity"] > 0) & (df["UnitPrice"] > 0) & ~codes.isin(NON_PRODUCT_CODES))
        return pd.DataFrame({
            "user": df.loc[keep, "CustomerID"].str.replace(r"\.0$", "", regex=True),
            "item": codes[keep], "timestamp": pd.to_datetime(df.loc[keep, "InvoiceDate"]),
            "event": "purchase", "basket": df.loc[keep, "InvoiceNo"]})
    path = dataset_path(name)
    if name == "ml-100k":
        df = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "ts"])
    else:
        df = pd.read_csv(path).rename(columns={"userId": "user", "movieId": "item",
                                               "timestamp": "ts"})
    df = df[df["rating"] > 3.5]
    return pd.DataFrame({"user": df["user"].astype(str), "item": df["item"].astype(str),
                         "timestamp": pd.to_datetime(df["ts"], unit="s"), "event": "purchase",
                         "basket": df["user"].astype(str) + "/" + df["ts"].astype(str)})


@dataclass
class HeldOut:
    user_ids: np.ndarray
    history: sp.csr_matrix
    truth: sp.csr_matrix
    orders: sp.csr_matrix  # distinct baskets per (shopper, item) before the cut
    last_days: sp.csr_matrix  # days between the last purchase and the cut (+1, so non-zero)


@dataclass
class Split:
    train: sp.csr_matrix
    validation: HeldOut
    test: HeldOut
    recent_popularity: np.ndarray
    item_ids: np.ndarray


def _rows(frame: pd.DataFrame, users: np.ndarray, items: dict, values: np.ndarray
          ) -> sp.csr_matrix:
    uidx = {u: i for i, u in enumerate(users)}
    r = frame["user"].map(uidx).to_numpy()
    c = frame["item"].map(items).to_numpy()
    ok = ~(pd.isna(r) | pd.isna(c))
    M = sp.csr_matrix((values[ok], (r[ok].astype(int), c[ok].astype(int))),
                      shape=(len(users), len(items)), dtype=np.float32)
    M.sum_duplicates()
    return M


def split_temporal(frame: pd.DataFrame, window_days: int = 30, fraction: float = 0.1,
                   event_weights: dict | None = None, half_life_days: float | None = None,
                   seed: int = 0) -> Split:
    day = frame["timestamp"].dt.floor("D")
    cut = day.max() - pd.Timedelta(days=window_days - 1)
    before, window = frame[frame["timestamp"] < cut], frame[
        (frame["timestamp"] >= cut) & (frame["timestamp"] < cut + pd.Timedelta(days=window_days))]
    shoppers = np.sort(before["user"].unique())
    eligible = np.sort(np.intersect1d(shoppers, window["user"].unique()))
    rng = np.random.default_rng(seed)
    n = round(fraction * len(shoppers))
    held = rng.permutation(eligible)
    val_u, test_u = np.sort(held[:n]), np.sort(held[n:2 * n])
    train_u = np.setdiff1d(shoppers, np.concatenate([val_u, test_u]))
    kw = {"event_weights": event_weights, "half_life_days": half_life_days, "now": cut,
          "aggregate": "sum"}
    tr = build_interaction_matrix(before[before["user"].isin(set(train_u))], **kw)
    items = tr.item_index()
    recent = before[(before["timestamp"] >= cut - pd.Timedelta(days=window_days))
                    & before["user"].isin(set(train_u))]
    pop = np.bincount(recent["item"].map(items).dropna().astype(int),
                      minlength=len(items)).astype(np.float32)

    def held_out(users: np.ndarray) -> HeldOut:
        b = before[before["user"].isin(set(users))]
        h = build_interaction_matrix(b, **kw)
        H = _rows(pd.DataFrame({"user": np.repeat(h.user_ids, np.diff(h.X.indptr)),
                                "item": h.item_ids[h.X.indices]}), users, items, h.X.data)
        w = window[window["user"].isin(set(users))].drop_duplicates(["user", "item"])
        T = _rows(w, users, items, np.ones(len(w), np.float32))
        ob = b.drop_duplicates(["user", "item", "basket"])
        Ord = _rows(ob, users, items, np.ones(len(ob), np.float32))
        last = b.groupby(["user", "item"])["timestamp"].max().reset_index()
        days = ((cut - last["timestamp"]).dt.total_seconds() / 86400 + 1).to_numpy(np.float32)
        L = _rows(last, users, items, days)
        keep = (np.diff(T.indptr) > 0) & (np.diff(H.indptr) > 0)
        return HeldOut(users[keep], H[keep], T[keep], Ord[keep], L[keep])

    return Split(tr.X, held_out(val_u), held_out(test_u), pop, tr.item_ids)


def buy_again_scores(h: HeldOut, recent_popularity: np.ndarray) -> np.ndarray:
    """Own items by #orders, recency breaking ties, then this window's best sellers."""
    n_items = h.history.shape[1]
    pop = recent_popularity / (recent_popularity.max() + 1.0)  # < 1: below any own item
    S = np.tile(pop, (h.orders.shape[0], 1)).astype(np.float64)
    Ord, L = h.orders.tocoo(), h.last_days.tocsr()
    rec = np.asarray(L[Ord.row, Ord.col]).ravel()
    S[Ord.row, Ord.col] = 1.0 + Ord.data * n_items + 1.0 / (1.0 + rec)
    return S.astype(np.float32)


def ndcg20(scores: np.ndarray, h: HeldOut, task: str = "all") -> float:
    """``all``: nothing masked; ``explore``: history masked, truth = items new to the shopper."""
    s = np.array(scores, dtype=np.float32, copy=True)
    truth = h.truth
    if task == "explore":
        exclude_seen(s, h.history)
        seen = (h.history > 0).astype(np.float32)
        truth = (truth - truth.multiply(seen)).tocsr()
        truth.eliminate_zeros()
    return ndcg_at_k(s, truth, 20).mean
