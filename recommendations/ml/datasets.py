"""Loaders for the public evaluation datasets, each returning a binary InteractionMatrix.

online-retail is committed to the repository (CC BY 4.0); MovieLens and Instacart must not be
redistributed, so they are read from a shared datasets directory and reported as missing
(:class:`DatasetNotFound`) when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .data import InteractionMatrix, build_interaction_matrix

REPO_ROOT = Path(__file__).resolve().parents[2]
ONLINE_RETAIL = REPO_ROOT / "data/online-retail/online_retail.csv.gz"
NAMES = ("online-retail", "ml-100k", "ml-latest-small", "instacart")

#: StockCodes that are fees, postage, adjustments or samples rather than products.
NON_PRODUCT_CODES = frozenset({
    "POST", "M", "D", "DOT", "BANK CHARGES", "AMAZONFEE", "C2", "CRUK", "PADS", "S", "B", "m",
    "gift_0001_10", "gift_0001_20", "gift_0001_30", "gift_0001_40", "gift_0001_50",
})


class DatasetNotFound(FileNotFoundError):
    """A dataset file is absent (e.g. no shared datasets directory on this machine)."""


def datasets_dir() -> Path:
    """``$RECOMMENDATIONS_DATASETS_DIR`` or ``<repo>/../shared/datasets``."""
    env = os.environ.get("RECOMMENDATIONS_DATASETS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared/datasets"


def dataset_path(name: str) -> Path:
    d = datasets_dir()
    return {
        "online-retail": ONLINE_RETAIL,
        "ml-100k": d / "ml-100k/u.data",
        "ml-latest-small": d / "ml-latest-small/ratings.csv",
        "instacart": d / "instacart-train-baskets/order_products__train.csv.gz",
    }[name]


def _require(path: Path, name: str) -> Path:
    if not path.is_file():
        raise DatasetNotFound(f"skipped: dataset {name} not found at {path}")
    return path


def _matrix(frame: pd.DataFrame, min_items: int) -> InteractionMatrix:
    frame = frame.drop_duplicates(["user", "item"])
    sizes = frame.groupby("user")["item"].transform("size")
    return build_interaction_matrix(frame[sizes >= min_items][["user", "item"]], binary=True)


def load_online_retail(path: Path | None = None, min_items: int = 5) -> InteractionMatrix:
    """Purchases: a customer id, a non-cancelled invoice, positive quantity and price, a product."""
    path = _require(path or ONLINE_RETAIL, "online-retail")
    df = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str},
                     usecols=["InvoiceNo", "StockCode", "Quantity", "UnitPrice", "CustomerID"])
    df = df[df["CustomerID"].notna()
            & ~df["InvoiceNo"].str.startswith("C")
            & (df["Quantity"] > 0) & (df["UnitPrice"] > 0)
            & ~df["StockCode"].isin(NON_PRODUCT_CODES)]
    frame = pd.DataFrame({"user": df["CustomerID"].str.replace(r"\.0$", "", regex=True),
                          "item": df["StockCode"].str.upper()})
    return _matrix(frame, min_items)


def load_movielens(name: str, min_items: int = 5, threshold: float = 3.5) -> InteractionMatrix:
    """Ratings above ``threshold`` (3.5, as in Liang et al.) are positives."""
    path = _require(dataset_path(name), name)
    if name == "ml-100k":
        df = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "ts"])
    else:
        df = pd.read_csv(path).rename(columns={"userId": "user", "movieId": "item"})
    df = df[df["rating"] > threshold]
    return _matrix(df[["user", "item"]], min_items)


def load_instacart(min_items: int = 5) -> InteractionMatrix:
    """Each order (the last basket of an anonymous customer) is one user."""
    path = _require(dataset_path("instacart"), "instacart")
    df = pd.read_csv(path, usecols=["order_id", "product_id"])
    return _matrix(df.rename(columns={"order_id": "user", "product_id": "item"}), min_items)


def load_csv(path: str | os.PathLike, min_items: int = 1) -> InteractionMatrix:
    """A CSV with columns user,item[,event,timestamp]; event weights -> binary positives."""
    path = _require(Path(path), str(path))
    df = pd.read_csv(path, dtype={"user": str, "item": str})
    im = build_interaction_matrix(df)
    return im.binarized()


def load_dataset(name_or_path: str) -> InteractionMatrix:
    """A dataset by name (see :data:`NAMES`) or a CSV path. Raises :class:`DatasetNotFound`."""
    if name_or_path == "online-retail":
        return load_online_retail()
    if name_or_path in ("ml-100k", "ml-latest-small"):
        return load_movielens(name_or_path)
    if name_or_path == "instacart":
        return load_instacart()
    return load_csv(name_or_path)
