"""Row codecs: each table's builder writes exactly its schema's columns, vectors and matrices go to
Arrow from numpy and come back equal, and the decoders read `flow.field`, log-mel and MFCC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mmfs.config import config_from_dict
from mmfs.media.hashing import sha256_file
from mmfs.pipelines.sources import SourceItem
from mmfs.schemas.codecs import column_array, flow_field, matrices, matrix, vectors
from mmfs.schemas.tables import MATRIX, PER_CHANNEL, vector
from mmfs.stages.decode import extract
from mmfs.stages.encode import Enricher
from mmfs.stages.items import PendingItem
from mmfs.stages.model_meta import run_schemas
from mmfs.stages.rows import RowBuilder
from mmfs.stages.versions import feature_versions
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS

# every CPU feature on (flow, shots, deltas, spectrograms, channels kept, redaction): the widest rows
WIDE = {
    "encoders": FAKE_ENCODERS,
    "video": {"shots": True},
    "audio": {"deltas": True, "spectrogram": ["power", "magnitude"], "channels": "keep", "vad": False},
    "text": {"redact_pii": True},
}


def _pending(path: Path) -> PendingItem:
    return PendingItem(
        sha256_file(path), SourceItem(path=path, uri=str(path)), [str(path)], path.stat().st_size
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[RowBuilder, dict[str, pa.Schema]]:
    tmp = tmp_path_factory.mktemp("codecs")
    cfg = config_from_dict(WIDE)
    paths = [
        mf.write_video(tmp / "v.mp4", times_s=[i / 8 for i in range(24)], audio_tone_hz=440.0),
        mf.write_image(tmp / "i.png"),
        mf.write_text(tmp / "t.txt", "Mail keeper@example.org before the ferry leaves."),
        mf.write_wav(tmp / "a.wav", duration_s=2.0, channels=2),
        tmp / "empty.txt",
    ]
    paths[-1].write_text("   ")  # a failed item: quarantine and failed media rows
    extracted = [extract(_pending(p), cfg) for p in paths]
    versions = feature_versions(cfg)
    schemas = run_schemas(cfg, versions)
    enricher = Enricher(cfg)
    items = {id(it.ex): it for it in enricher.run(extracted)}
    rows = RowBuilder(cfg, "run-1", versions, {}, enricher.fusion())
    for ex in extracted:
        rows.add_item(ex, items.get(id(ex)))
    return rows, schemas


def test_every_table_builder_writes_exactly_its_schema_columns(built: tuple) -> None:
    rows, schemas = built
    for table in ("media", "frames", "flow", "shots", "audio", "text", "segments", "quarantine"):
        table_rows = rows.rows[table]
        assert table_rows, f"the wide batch makes {table} rows"
        names = set(schemas[table].names)
        for row in table_rows:
            assert set(row) == names, (table, sorted(names ^ set(row)))
    tables = rows.tables(schemas)
    assert all(tables[t].schema == schemas[t] for t in tables)
    assert not rows.rows["vocabulary"]  # the corpus step's table: no item writes it


def test_vectors_and_matrices_go_through_numpy_and_come_back_equal(built: tuple) -> None:
    rows, schemas = built
    tables = rows.tables(schemas)
    audio = tables["audio"]
    written = [r["log_mel"] for r in rows.rows["audio"]]
    assert all(isinstance(m, np.ndarray) for m in written)
    for got, want in zip(matrices(audio.column("log_mel")), written, strict=True):
        assert got is not None and np.array_equal(got, want)
    assert np.array_equal(matrix(audio.column("mfcc")[0]), rows.rows["audio"][0]["mfcc"])
    frames = tables["frames"]
    want = np.stack([r["embedding"] for r in rows.rows["frames"]])
    assert np.array_equal(vectors(frames.column("embedding")), want)
    field = flow_field(tables["flow"].slice(0, 1).to_pylist()[0])
    assert field is not None and field.shape == tuple(rows.rows["flow"][0]["field_shape"])


def test_column_codec_matches_pyarrow_on_nulls_and_shapes() -> None:
    rng = np.random.default_rng(3)
    vecs = [rng.standard_normal(4).astype(np.float32), None]
    assert column_array(vecs, vector(4)).equals(pa.array([vecs[0].tolist(), None], vector(4)))
    mats = [rng.standard_normal((3, 5)).astype(np.float32), None, np.zeros((0, 0), np.float32)]
    assert column_array(mats, MATRIX).equals(pa.array([mats[0].tolist(), None, []], MATRIX))
    cube = [rng.standard_normal((2, 3, 4)).astype(np.float32)]
    assert column_array(cube, PER_CHANNEL).equals(pa.array([cube[0].tolist()], PER_CHANNEL))
    with pytest.raises(ValueError, match="width 3"):
        column_array([np.zeros(3, np.float32)], vector(4))
