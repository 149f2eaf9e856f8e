"""``evaluate --protocol coldstart``: the item cold-start protocol on a named dataset.

One JSON line per method (``random``, ``tfidf_profile``, ``content_map``) with Recall@20,
NDCG@20 and HitRate@20 over the held-out items only (see :mod:`.coldstart`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .coldstart import evaluate_cold_start
from .content import documents, tfidf
from .datasets import DatasetNotFound, load_dataset, load_item_content
from .models import CatalogueTooLargeError


def coldstart_main(args: argparse.Namespace) -> int:
    try:
        im = load_dataset(args.dataset)
        texts, categories, prices = load_item_content(args.dataset, im.item_ids)
    except DatasetNotFound as exc:
        print(str(exc))
        return 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    features = tfidf(documents(texts, categories, prices))
    started = time.perf_counter()
    try:
        rows = evaluate_cold_start(im.X, features, share=args.cold_share, seed=args.seed)
    except CatalogueTooLargeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    for row in rows:
        print(json.dumps({**row, "dataset": args.dataset, "seconds": round(seconds, 1)}))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"dataset": args.dataset, "results": rows},
                                          indent=2))
    return 0
