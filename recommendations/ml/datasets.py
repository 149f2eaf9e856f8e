"""Loaders for the public evaluation datasets, each returning a binary InteractionMatrix.

online-retail is committed to the repository (CC BY 4.0); MovieLens and Instacart must not be
redistributed, so they are read from a shared datasets directory and reported as missing
(:class:`DatasetNotFound`) when it is absent.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
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
    return _matrix(_uci_purchases(df, "InvoiceNo", "StockCode", "Quantity", "UnitPrice",
                                  "CustomerID"), min_items)


def _uci_purchases(df: pd.DataFrame, invoice: str, code: str, quantity: str, price: str,
                   customer: str, date: str | None = None) -> pd.DataFrame:
    """The purchase rows of a UCI Online Retail (I or II) invoice-line table, as user/item
    (+ ``timestamp`` and ``basket`` = the invoice when ``date`` names the invoice date column)."""
    invoices = df[invoice].astype(str)
    codes = df[code].astype(str).str.strip()
    keep = (df[customer].notna()
            & ~invoices.str.startswith("C")
            & (pd.to_numeric(df[quantity], errors="coerce") > 0)
            & (pd.to_numeric(df[price], errors="coerce") > 0)
            & ~codes.isin(NON_PRODUCT_CODES))
    out = pd.DataFrame({
        "user": df.loc[keep, customer].astype(str).str.replace(r"\.0$", "", regex=True),
        "item": codes[keep].str.upper(),
    })
    if date is not None:
        out["timestamp"] = pd.to_datetime(df.loc[keep, date])
        out["basket"] = invoices[keep]
        out["event"] = "purchase"
        # what was paid: the shopper-insight models (churn.py) need order value and unit price
        out["unit_price"] = pd.to_numeric(df.loc[keep, price]).astype(np.float64)
        out["value"] = out["unit_price"] * pd.to_numeric(df.loc[keep, quantity])
    return out


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


#: Column names a CSV may use, compared without case, spaces, dashes or underscores, in order
#: of preference: those of common public retail, e-commerce and ratings logs.
USER_COLUMNS = ("user", "userid", "customerid", "customer", "visitorid", "visitor", "clientid",
                "householdkey", "sessionid", "session", "orderid", "basketid")
ITEM_COLUMNS = ("item", "itemid", "productid", "product", "stockcode", "sku", "articleid",
                "movieid", "asin")
EVENT_COLUMNS = ("event", "eventtype", "behavior", "behaviour", "action")
TIME_COLUMNS = ("timestamp", "time", "eventtime", "invoicedate", "datetime", "date", "ts",
                "orderdate", "createdat")
#: An order line's (or order's) amount paid; a ``price``/``unitprice`` column is kept as well.
VALUE_COLUMNS = ("value", "amount", "revenue", "sales", "linetotal", "total")
BASKET_COLUMNS = ("basket", "basketid", "orderid", "invoiceno", "invoice", "transactionid")
#: Other logs' names for our events (compared like the column names).
EVENT_SYNONYMS = {
    "addtocart": "add_to_cart", "cart": "add_to_cart", "addtobasket": "add_to_cart",
    "removefromcart": "remove_from_cart", "transaction": "purchase", "buy": "purchase",
    "order": "purchase", "checkout": "purchase", "pv": "view", "click": "view",
    "detail": "view", "pageview": "view",
}


def _key(name: object) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _sniff_separator(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        header = f.readline()
    return max((",", "\t", ";", "|"), key=header.count)


def _parse_time(values: pd.Series) -> pd.Series:
    """UTC datetimes from dates or Unix epochs (seconds, or milliseconds when that large)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all() and len(num):
        return pd.to_datetime(num, unit="ms" if num.abs().max() > 1e11 else "s", utc=True)
    return pd.to_datetime(values, utc=True, format="mixed")


def _csv_frame(path: Path) -> tuple[pd.DataFrame, bool]:
    """(frame of user, item [, event, timestamp, basket], is_uci_invoice_table)."""
    df = pd.read_csv(path, sep=_sniff_separator(path), dtype=str, low_memory=False)
    columns = {_key(c): c for c in df.columns}

    def find(candidates: tuple[str, ...]) -> str | None:
        return next((columns[c] for c in candidates if c in columns), None)

    invoice = columns.get("invoiceno") or columns.get("invoice")
    price = columns.get("unitprice") or columns.get("price")
    if invoice and price and {"stockcode", "quantity"} <= set(columns) and find(USER_COLUMNS):
        frame = _uci_purchases(df, invoice, columns["stockcode"], columns["quantity"], price,
                               find(USER_COLUMNS), date=find(TIME_COLUMNS))
        return frame, True
    user, item = find(USER_COLUMNS), find(ITEM_COLUMNS)
    if user is None or item is None:
        raise ValueError(
            f"{path}: no {'user' if user is None else 'item'} column among {list(df.columns)}; "
            f"name it one of {USER_COLUMNS if user is None else ITEM_COLUMNS} "
            "(case, spaces and underscores do not matter)")
    frame = pd.DataFrame({"user": df[user], "item": df[item]})
    event = find(EVENT_COLUMNS)
    if event is not None:
        keys = df[event].map(_key)
        frame["event"] = keys.map(EVENT_SYNONYMS).fillna(df[event].str.lower())
    time = find(TIME_COLUMNS)
    if time is not None:
        frame["timestamp"] = df[time]
    basket = find(BASKET_COLUMNS)
    if basket is not None:
        frame["basket"] = df[basket]
    if "quantity" in columns:
        frame["quantity"] = df[columns["quantity"]]
    if price is not None:  # what was paid, for the shopper-insight models (churn.py)
        frame["unit_price"] = pd.to_numeric(df[price], errors="coerce")
    value = find(VALUE_COLUMNS)
    if value is not None:
        frame["value"] = pd.to_numeric(df[value], errors="coerce")
    return frame.dropna(subset=["user", "item"]), False


def load_csv(path: str | os.PathLike, min_items: int = 1) -> InteractionMatrix:
    """An interaction log from a CSV (or .csv.gz; comma, tab, semicolon or pipe separated).

    Columns are recognised by name (:data:`USER_COLUMNS`, :data:`ITEM_COLUMNS`, an optional
    event column, :data:`TIME_COLUMNS`, :data:`BASKET_COLUMNS`), so other shops' exports and
    public logs load as they are. A UCI Online Retail style invoice table (I or II: invoice,
    StockCode, Quantity, price, customer) keeps purchases only, as ``online-retail`` does.
    Events are mapped to ours (:data:`EVENT_SYNONYMS`), weighted and binarised; users with
    fewer than ``min_items`` items are dropped (the evaluation split also keeps users with >= 5).
    """
    path = _require(Path(path), str(path))
    frame, uci = _csv_frame(path)
    if uci:
        return _matrix(frame[["user", "item"]], min_items)
    im = build_interaction_matrix(frame).binarized()
    if min_items > 1:
        counts = np.diff(im.X.indptr)
        keep = np.flatnonzero(counts >= min_items)
        im = InteractionMatrix(im.X[keep], im.user_ids[keep], im.item_ids)
    return im


def load_frame(name_or_path: str) -> pd.DataFrame:
    """The dataset as a timed event log for the temporal protocol.

    Columns ``user``, ``item``, ``timestamp`` (UTC), ``event`` and, where the data has orders,
    ``basket``. online-retail: purchases (as :func:`load_online_retail`), basket = invoice,
    plus ``unit_price`` and ``value`` (quantity x unit price; also for any UCI-style table).
    MovieLens: a rating above 3.5 is a ``purchase``, a lower one a ``view`` (the shopper looked
    but did not like it). instacart has no timestamps: ``ValueError``. A CSV: columns by name
    (see :func:`load_csv`); a log without a recognised time column is a ``ValueError``.
    Raises :class:`DatasetNotFound` when the file is absent.
    """
    if name_or_path == "instacart":
        _require(dataset_path("instacart"), "instacart")
        raise ValueError("instacart has no timestamps (one anonymous basket per shopper): "
                         "the temporal protocol cannot cut it in time; use --protocol random")
    if name_or_path == "online-retail":
        path = _require(ONLINE_RETAIL, "online-retail")
        df = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str},
                         usecols=["InvoiceNo", "StockCode", "Quantity", "UnitPrice",
                                  "CustomerID", "InvoiceDate"])
        frame = _uci_purchases(df, "InvoiceNo", "StockCode", "Quantity", "UnitPrice",
                               "CustomerID", date="InvoiceDate")
    elif name_or_path in ("ml-100k", "ml-latest-small"):
        path = _require(dataset_path(name_or_path), name_or_path)
        if name_or_path == "ml-100k":
            df = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "timestamp"])
        else:
            df = pd.read_csv(path).rename(columns={"userId": "user", "movieId": "item"})
        frame = pd.DataFrame({
            "user": df["user"], "item": df["item"], "timestamp": df["timestamp"],
            "event": np.where(df["rating"] > 3.5, "purchase", "view")})
    else:
        frame, _ = _csv_frame(_require(Path(name_or_path), str(name_or_path)))
    if "timestamp" not in frame.columns:
        raise ValueError(f"{name_or_path}: no time column (name one of {TIME_COLUMNS}); "
                         "the temporal protocol needs when each event happened")
    frame = frame.copy()
    frame["timestamp"] = _parse_time(frame["timestamp"])
    return frame.reset_index(drop=True)


def load_dataset(name_or_path: str) -> InteractionMatrix:
    """A dataset by name (see :data:`NAMES`) or a CSV path. Raises :class:`DatasetNotFound`."""
    if name_or_path == "online-retail":
        return load_online_retail()
    if name_or_path in ("ml-100k", "ml-latest-small"):
        return load_movielens(name_or_path)
    if name_or_path == "instacart":
        return load_instacart()
    return load_csv(name_or_path)


def _online_retail_content(item_ids: np.ndarray) -> tuple[list[str], list, list]:
    df = pd.read_csv(_require(ONLINE_RETAIL, "online-retail"), dtype={"StockCode": str},
                     usecols=["StockCode", "Description", "UnitPrice"])
    df["StockCode"] = df["StockCode"].astype(str).str.strip().str.upper()
    described = df.dropna(subset=["Description"])
    text = described.groupby("StockCode")["Description"].agg(lambda s: s.mode().iloc[0])
    price = df[df["UnitPrice"] > 0].groupby("StockCode")["UnitPrice"].median()
    return ([str(text.get(i, "")) for i in item_ids], [None] * len(item_ids),
            [None if pd.isna(price.get(i)) else float(price[i]) for i in item_ids])


def _movielens_content(name: str, item_ids: np.ndarray) -> tuple[list[str], list, list]:
    path = _require(dataset_path(name), name)
    if name == "ml-100k":
        genres = [g.split("|")[0] for g in
                  (path.parent / "u.genre").read_text(encoding="latin-1").splitlines() if g]
        items = pd.read_csv(path.parent / "u.item", sep="|", encoding="latin-1", header=None)
        flags = items.iloc[:, 5:5 + len(genres)].to_numpy()
        words = [f"genre_{g.replace(' ', '_').replace('-', '_')}" for g in genres]
        text = {int(row[0]): f"{row[1]} " + " ".join(w for w, f in zip(words, flag, strict=True)
                                                     if f)
                for row, flag in zip(items.itertuples(index=False), flags, strict=True)}
    else:
        movies = pd.read_csv(path.parent / "movies.csv")
        text = {int(m): f"{t} " + " ".join(f"genre_{g.replace('-', '_')}" for g in gs.split("|"))
                for m, t, gs in movies[["movieId", "title", "genres"]].itertuples(index=False)}
    return ([text.get(int(i), "") for i in item_ids], [None] * len(item_ids),
            [None] * len(item_ids))


def _instacart_content(item_ids: np.ndarray) -> tuple[list[str], list, list]:
    folder = _require(dataset_path("instacart"), "instacart").parent
    products = pd.read_csv(folder / "products.csv.gz").set_index("product_id")
    aisles = pd.read_csv(folder / "aisles.csv").set_index("aisle_id")["aisle"]
    rows = products.reindex([int(i) for i in item_ids])
    texts = [f"{name} {aisles.get(aisle, '')}" if isinstance(name, str) else ""
             for name, aisle in zip(rows["product_name"], rows["aisle_id"], strict=True)]
    return texts, [None if pd.isna(d) else int(d) for d in rows["department_id"]], \
        [None] * len(item_ids)


def load_item_content(name: str, item_ids: np.ndarray) -> tuple[list[str], list, list]:
    """What the dataset says about each of ``item_ids``: (texts, categories, prices), in the
    order :func:`.content.documents` takes them. online-retail: description and median unit
    price; MovieLens: title and genres; instacart: name, aisle and department."""
    if name == "online-retail":
        return _online_retail_content(item_ids)
    if name in ("ml-100k", "ml-latest-small"):
        return _movielens_content(name, item_ids)
    if name == "instacart":
        return _instacart_content(item_ids)
    raise ValueError(f"{name}: item descriptions are known only for {', '.join(NAMES)}")
