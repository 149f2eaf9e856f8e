"""New items placed by content into a served model and scored on its scale (no Django)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.ml import content
from recommendations.ml.coldstart import ContentMap
from recommendations.ml.data import split_strong
from recommendations.ml.models import REGISTRY
from recommendations.ml.new_items import (
    closest_history,
    decoder_rows,
    item_item_term,
    placeable,
    predict_columns,
    predict_rows,
    score_with_new,
)
from recommendations.ml.serving_model import ServedNextBasket, served_form

from .conftest import clustered_matrix

FAST_VAE = {"epochs": 3, "hidden": 32, "latent": 8, "batch_size": 64, "seed": 3}
WORDS = ["ceramic teapot", "garden spade", "wool scarf", "candle holder"]
N_ITEMS, CLUSTERS = 60, 4
#: Two items of each cluster are held out of training: the "new" items.
NEW = np.array([c * 15 + o for c in range(CLUSTERS) for o in (13, 14)])
KNOWN = np.setdiff1d(np.arange(N_ITEMS), NEW)


def _cluster(item: int) -> int:
    return item // 15  # np.array_split of 60 items into 4 clusters


@pytest.fixture(scope="module")
def features() -> sp.csr_matrix:
    docs = content.documents(
        [f"{WORDS[_cluster(i)]} number{i}" for i in range(N_ITEMS)],
        [_cluster(i) for i in range(N_ITEMS)],
        [float(1 + _cluster(i)) for i in range(N_ITEMS)],
    )
    return content.tfidf(docs)


@pytest.fixture(scope="module")
def trained() -> dict:
    X = clustered_matrix(n_users=300, n_items=N_ITEMS, n_clusters=CLUSTERS)[:, KNOWN].tocsr()
    s = split_strong(X, n_heldout_users=40, seed=0)
    out = {"ease": REGISTRY["ease"](l2=10.0).fit(s.train)}
    out["next_basket"] = REGISTRY["next_basket"](**FAST_VAE).fit(s.train, s.validation)
    out["pure_vae"] = REGISTRY["vae"](**{**FAST_VAE, "epochs": 40}, skip_l2=None).fit(
        s.train, s.validation)
    return {k: served_form(m) for k, m in out.items()}


def _history(cluster: int, size: int = 5) -> sp.csr_matrix:
    """A history of known items of one cluster (in the model's columns)."""
    cols = np.flatnonzero([_cluster(i) == cluster for i in KNOWN])[:size]
    return sp.csr_matrix((np.full(len(cols), 2.0, np.float32), (np.zeros(len(cols)), cols)),
                         shape=(1, len(KNOWN)))


@pytest.mark.parametrize("side", ["primal", "dual"])
def test_the_sparse_solve_predicts_what_content_map_predicts(side: str, features) -> None:
    rng = np.random.default_rng(0)
    B = sp.random(len(KNOWN), len(KNOWN), density=0.2, random_state=1, format="csr")
    F = features[KNOWN]
    if side == "dual":  # more features than known items: the n x n side is solved
        F = sp.hstack([F, sp.csr_matrix(rng.random((len(KNOWN), 80)))], format="csr")
    Fn = sp.csr_matrix(F[:6] * 0.5 + F[10:16] * 0.5)
    got = predict_columns(B, np.arange(len(KNOWN)), F, Fn, alpha=0.7, top_k=None)
    expected = ContentMap(0.7).fit(F, B.T.toarray()).predict(Fn)
    np.testing.assert_allclose(got.toarray(), expected, rtol=1e-4, atol=1e-5)


def test_a_predicted_column_keeps_its_top_k_entries(trained, features) -> None:
    term, _ = item_item_term(trained["ease"])
    cols = predict_columns(term, np.arange(len(KNOWN)), features[KNOWN], features[NEW], top_k=7)
    assert cols.shape == (len(NEW), len(KNOWN))
    assert (np.diff(cols.indptr) <= 7).all() and cols.nnz > 0


def test_an_ease_column_scores_as_the_item_it_copies(trained) -> None:
    model = trained["ease"]
    term, _ = item_item_term(model)
    columns = sp.csr_matrix(term[:, [3, 20]])  # "new" items whose columns are items 3's, 20's
    X = _history(0) + _history(2)
    known, new = score_with_new(model, X, columns)
    np.testing.assert_allclose(known, model.score(X), rtol=1e-6)
    np.testing.assert_allclose(new[0], known[0, [3, 20]], rtol=1e-5)


def test_without_new_items_next_basket_scores_as_served(trained) -> None:
    model = trained["next_basket"]
    X = _history(1)
    known, new = score_with_new(model, X, sp.csr_matrix((model.n_items, 0), dtype=np.float32))
    assert new.shape == (1, 0)
    np.testing.assert_allclose(known, model.score(X), rtol=1e-5, atol=1e-9)


def test_the_decoder_rows_are_predicted_as_content_map_predicts(trained, features) -> None:
    targets = decoder_rows(trained["next_basket"])
    assert targets.shape == (len(KNOWN), trained["next_basket"].item_vectors().shape[1] + 1)
    got = predict_rows(targets, np.arange(len(KNOWN)), features[KNOWN], features[NEW],
                       alpha=0.7)
    expected = ContentMap(0.7).fit(features[KNOWN], targets).predict(features[NEW])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert decoder_rows(trained["ease"]) is None


@pytest.mark.parametrize("name", ["next_basket", "pure_vae"])
def test_a_new_item_with_a_known_items_rows_scores_as_that_item(name, trained) -> None:
    """Columns and decoder rows copied from items 3 and 20: the new items' scores are theirs,
    in the same call (next_basket's explore part is a softmax over all items, new included;
    its trend share, which a new item has none of, is left out by a zero trend)."""
    model = trained[name]
    if name == "next_basket":
        model = ServedNextBasket(model.meta, {**model.arrays,
                                              "trend": np.zeros(model.n_items, np.float32)})
    term = item_item_term(model)
    columns = sp.csr_matrix(term[0][:, [3, 20]]) if term is not None \
        else sp.csr_matrix((model.n_items, 2), dtype=np.float32)
    rows = decoder_rows(model)[[3, 20]]
    X = _history(1)  # items 3 and 20 (clusters 0 and 1's ends) are not in this history
    assert not set(X.indices) & {3, 20}
    known, new = score_with_new(model, X, columns, rows)
    np.testing.assert_allclose(new[0], known[0, [3, 20]], rtol=1e-4)
    # without the rows, the VAE part is the row's mean: the scores differ
    _, mean_only = score_with_new(model, X, columns)
    assert not np.allclose(mean_only[0], known[0, [3, 20]], rtol=1e-3)


def test_a_vae_without_the_term_places_new_items_by_their_decoder_rows(trained) -> None:
    model = trained["pure_vae"]
    assert item_item_term(model) is None and placeable(model)
    with pytest.raises(ValueError, match="2 decoder rows for 3 new items"):
        score_with_new(model, _history(0), sp.csr_matrix((model.n_items, 3), dtype=np.float32),
                       decoder_rows(model)[:2])


@pytest.mark.parametrize("name", ["ease", "next_basket", "pure_vae"])
def test_new_items_of_the_shoppers_kind_outscore_the_others(name, trained, features) -> None:
    model = trained[name]
    term = item_item_term(model)
    placed = predict_columns(term[0], np.arange(len(KNOWN)), features[KNOWN], features[NEW]) \
        if term is not None else sp.csr_matrix((len(NEW), model.n_items), dtype=np.float32)
    targets = decoder_rows(model)
    rows = None if targets is None else predict_rows(
        targets, np.arange(len(KNOWN)), features[KNOWN], features[NEW])
    for cluster in range(CLUSTERS):
        X = _history(cluster)
        known, new = score_with_new(model, X, placed.T.tocsr(), rows)
        mine = np.array([_cluster(i) == cluster for i in NEW])
        assert new[0, mine].min() > new[0, ~mine].max(), (cluster, new)
        # on the model's scale: the shopper's new items rank among the known items of their
        # cluster, above every known item of another cluster that they have not seen
        others = np.array([_cluster(i) != cluster for i in KNOWN])
        assert new[0, mine].min() > known[0, others].max()


def test_the_reason_is_the_history_item_that_contributes_most(trained, features) -> None:
    model = trained["ease"]
    term, _ = item_item_term(model)
    placed = predict_columns(term, np.arange(len(KNOWN)), features[KNOWN], features[NEW])
    X = _history(1) + _history(3)
    closest = closest_history(X, placed.T.tocsr(), np.arange(len(NEW)))
    for i, col in zip(NEW, closest, strict=True):
        if _cluster(i) in (1, 3):  # the shopper has items of these clusters only
            assert col >= 0 and _cluster(KNOWN[col]) == _cluster(i)


def test_a_model_without_an_item_item_term_is_refused(trained) -> None:
    X = clustered_matrix(n_users=50, n_items=N_ITEMS)
    pop = served_form(REGISTRY["pop"]().fit(X))
    assert item_item_term(pop) is None and not placeable(pop)
    with pytest.raises(ValueError, match="no item-item term or VAE"):
        score_with_new(pop, X[:1], sp.csr_matrix((N_ITEMS, 1), dtype=np.float32))
