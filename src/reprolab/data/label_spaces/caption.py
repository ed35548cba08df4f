"""Caption label distances (log-ratio paper, caption-aware image retrieval on MS-COCO).

The paper's caption distance is UNVERIFIED (the paper text was not reachable and no code exists
for this task). Ours, a choice recorded in reproductions/log-ratio/NOTES.md: each image is the
document of its captions joined (five per COCO image), the documents of the split are turned
into L2-normalised TF-IDF vectors (scikit-learn's ``TfidfVectorizer``, fitted on the split
itself), and the label distance of two images is ``1 - cosine similarity`` of their vectors,
clipped to [0, 1]: 0 for identical caption sets, 1 for captions with no (non-stop) word in common.

Recipe options (``data: {label_space: {name: caption, ...}}``):

    distance      a name in CAPTION_FEATURES (default ``tfidf-cosine``, the only one so far)
    min_df, max_df, stop_words, sublinear_tf, smooth_idf, ngram_range
                  passed to TfidfVectorizer (defaults: DEFAULT_TFIDF)

Another caption distance that is a cosine distance between caption features (sentence
embeddings, say) is one more entry in CAPTION_FEATURES: a function from the images' caption
lists and the options to a row-normalised feature matrix. A distance of another form would
override :meth:`CaptionLabels.distance_rows`.

Nothing here is N x N: a distance row is one sparse row times the transposed matrix (chunked for
many rows), so the Karpathy train split (113,287 images) costs one TF-IDF fit at build time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from reprolab.data.label_spaces import LABEL_SPACES, LabelSpace, annotation_columns

# Our defaults (UNVERIFIED against the paper): English stop words out, log-scaled term counts.
DEFAULT_TFIDF: dict[str, Any] = {"min_df": 1, "max_df": 1.0, "stop_words": "english",
                                 "sublinear_tf": True, "smooth_idf": True, "ngram_range": (1, 1)}
ROWS_PER_CHUNK = 64  # distance rows per sparse product: bounds the intermediate's memory (~60 MiB at 113k)


def tfidf_features(captions: list[list[str]], options: dict[str, Any]) -> sparse.csr_matrix:
    """L2-normalised TF-IDF vectors (images x vocabulary) of each image's captions joined."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    unknown = set(options) - set(DEFAULT_TFIDF)
    if unknown:
        raise ValueError(f"data.label_space (caption, tfidf-cosine): unknown option(s) "
                         f"{', '.join(sorted(unknown))}; expected {', '.join(DEFAULT_TFIDF)}")
    settings = {**DEFAULT_TFIDF, **options}
    settings["ngram_range"] = tuple(settings["ngram_range"])
    vectorizer = TfidfVectorizer(norm="l2", dtype=np.float64, **settings)
    try:
        return vectorizer.fit_transform(" ".join(texts) for texts in captions).tocsr()
    except ValueError as error:  # e.g. an empty vocabulary after stop words and min_df
        raise ValueError(f"data.label_space (caption, tfidf-cosine) with {settings}: {error}") from None


# name -> (caption lists, options) -> row-normalised features; distance = 1 - cosine similarity
CAPTION_FEATURES: dict[str, Callable[[list[list[str]], dict[str, Any]], sparse.csr_matrix]] = {
    "tfidf-cosine": tfidf_features,
}


def split_captions(split) -> list[list[str]]:
    """Each image's captions (the manifest column ``captions``, a JSON list of sentences).

    A prepared split answers from its manifest alone (no image shards are read)."""
    column = annotation_columns(split, ("captions",), dataset="coco-captions2014")["captions"]
    captions = [json.loads(value) if isinstance(value, str) else list(value) for value in column]
    for i, texts in enumerate(captions):
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"{split!r}: sample {i} has no captions or non-text captions ({texts!r})")
    return captions


@LABEL_SPACES.register(name="caption")
class CaptionLabels(LabelSpace):
    """Label distance = 1 - cosine similarity of the images' caption features (default TF-IDF)."""

    def __init__(self, split, options: dict[str, Any]):
        super().__init__(split, options)
        settings = dict(options)
        self.distance = str(settings.pop("distance", "tfidf-cosine"))
        if self.distance not in CAPTION_FEATURES:
            raise ValueError(f"data.label_space.distance: {self.distance!r} is not a caption distance; "
                             f"expected one of {', '.join(CAPTION_FEATURES)}")
        self.features = CAPTION_FEATURES[self.distance](split_captions(split), settings)
        self._features_t = self.features.T.tocsr()  # vocabulary x images: one product per chunk

    def distance_rows(self, indices: Sequence[int]) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise IndexError(f"{self.split!r}: index out of range ({len(self)} images)")
        indices %= max(len(self), 1)
        rows = np.empty((indices.size, len(self)), dtype=np.float32)
        for start in range(0, indices.size, ROWS_PER_CHUNK):
            chunk = indices[start:start + ROWS_PER_CHUNK]
            distance = (self.features[chunk] @ self._features_t).toarray()
            np.subtract(1.0, distance, out=distance)
            rows[start:start + chunk.size] = np.clip(distance, 0.0, 1.0, out=distance)
        rows[np.arange(indices.size), indices] = 0.0  # rounding aside, an image is at 0 from itself
        return rows
