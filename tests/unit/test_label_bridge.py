"""The label bridge on real photos: WordNet class words, pixel cues, soft labels, what a phrase reaches."""

from __future__ import annotations

import numpy as np
import pytest

from mmfs.encoders.imagenet_wordnet import class_words
from mmfs.encoders.label_bridge import FrameHints, bridge_vectors, soft_labels
from mmfs.transforms.image.cues import image_cues
from mmfs.transforms.image.pixels import resize_short_side

data = pytest.importorskip("skimage.data", reason="scikit-image provides the real test photos")


def test_every_imagenet_class_has_its_wordnet_synset() -> None:
    classes = class_words()
    assert len(classes) == 1000 and all(c.gloss and c.hypernyms for c in classes)
    names = [c.name for c in classes]
    tabby = classes[names.index("tabby")]
    assert tabby.hypernyms[:3] == ("domestic cat", "cat", "feline") and "tawny" in tabby.gloss
    bird, machine = classes[names.index("crane bird")], classes[names.index("crane")]
    assert "bird" in bird.hypernyms and "device" in machine.hypernyms  # the two cranes told apart
    assert "a kind of domestic cat, cat, feline" in tabby.text()


def test_cues_name_colours_and_tell_drawings_and_grey_photos_from_photos() -> None:
    assert image_cues(data.horse().astype(np.uint8) * 255).style == "drawing"  # a silhouette
    assert image_cues(data.logo()).style == "drawing"
    assert image_cues(data.camera()).style == "black and white photo"
    cat = image_cues(data.chelsea())
    assert cat.style == "photo" and {"orange", "brown"} & set(cat.colours)
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 220
    assert image_cues(red).colours == ("red",)
    assert image_cues(data.rocket()).colours[0] == "blue"  # the sky


def test_soft_labels_flatten_and_sum_to_one() -> None:
    probs = np.zeros((1, 1000))
    probs[0, [3, 7, 9]] = [0.9, 0.09, 0.01]
    idx, weights = soft_labels(probs, top=3)
    assert list(idx[0]) == [3, 7, 9] and weights.sum() == pytest.approx(1.0)
    assert weights[0, 1] / weights[0, 0] > 0.09 / 0.9  # the second guess counts more than its raw share


@pytest.fixture(scope="module")
def models():  # type: ignore[no-untyped-def]
    from mmfs.encoders.registry import create

    return create("image.efficientnet_lite0", device="cpu"), create("text.minilm", device="cpu")


PHOTOS = {
    "chelsea": data.chelsea(),
    "coffee": data.coffee(),
    "rocket": data.rocket(),
    "astronaut": data.astronaut(),
    "horse": np.repeat((~data.horse()).astype(np.uint8)[:, :, None] * 255, 3, axis=2),
    "camera": np.repeat(data.camera()[:, :, None], 3, axis=2),
}
PHRASES = {  # none of these words is an ImageNet label of its photo
    "an animal of the feline family": "chelsea",
    "a hot drink": "coffee",
    "a spacecraft taking off": "rocket",
    "a drawing of a horse": "horse",
    "black and white photo of a man": "camera",
}


@pytest.mark.slow  # embeds the 1000 class descriptions once (then cached in ~/.cache/mmfs)
def test_phrases_reach_their_photo_through_the_bridge(models) -> None:  # type: ignore[no-untyped-def]
    image, text = models
    names = list(PHOTOS)
    pixels = [resize_short_side(p, 256) for p in PHOTOS.values()]
    _, labels, probs = image.embed_classify_probabilities(pixels, top_k=3)
    assert probs.shape == (len(names), 1000) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert labels[0][0][1] == pytest.approx(float(probs[0].max()))  # top-k read from the same softmax
    hints = [FrameHints(c.colours, c.style) for c in map(image_cues, pixels)]
    vectors, words = bridge_vectors(text, probs, hints)
    assert vectors.shape == (len(names), text.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert "drawing" in words[names.index("horse")] and "cat" in words[names.index("chelsea")]
    scores = text.embed(list(PHRASES)) @ vectors.T
    reached = {phrase: names[int(np.argmax(row))] for phrase, row in zip(PHRASES, scores, strict=True)}
    assert reached == PHRASES
