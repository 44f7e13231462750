"""Security defaults (G17), each checked against the real code with hostile input and no mocks.

1. Store filters are built from typed values: quotes, comments, backslashes and look-alike unicode
   quotes match nothing or exactly the literal, and never widen a search, a delete or an erasure.
   `mmfs search --where` takes typed `column=value` pairs only; the raw-SQL path (`mmfs sql`) is an
   analyst tool that must not be able to change the store.
2. Manifest paths resolve under allowed roots, local files only: traversal, absolute paths, symlinks
   out of the root and other schemes are refused with SourceRejected and become quarantine rows.
3. Weights load as safetensors or with `torch.load(weights_only=True)`: a crafted pickle whose
   unpickling would create a marker file is refused and the marker never appears; a tampered file
   fails its sha256 pin before anything is read.
4. Subprocesses take argument lists: no `shell=True`, `os.system` or `os.popen` in the package.
5. Archives: mmfs extracts none (no tarfile/zipfile extraction anywhere); a hostile tar given as
   input is quarantined as unsupported media and none of its members is written.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import pickle
import random
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import mmfs
from mmfs.config import SourcesConfig, config_from_dict
from mmfs.errors import ConfigError, EncoderError, ErrorCode, SourceRejected
from mmfs.pipelines.run import run_pipeline
from mmfs.pipelines.sources import discover
from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.erase import erase
from mmfs.store.filters import equals_all, in_list, sql_literal
from mmfs.store.indexes import ensure_indexes
from mmfs.store.search import search_segments
from mmfs.store.sql import run_sql
from tests import media_factory as mf

PACKAGE = Path(mmfs.__file__).parent
DIMS = Dims(image=4, text=3, audio=2)
SECRET = "TOPSECRET-do-not-ingest"

# Values an attacker (or an unlucky file name) puts where a filter value goes.
EVIL: tuple[str, ...] = (
    "x' OR '1'='1",
    "x' OR 1=1 --",
    "'; DROP TABLE media; --",
    "\\' OR media_id IS NOT NULL --",  # only an injection if backslash escaped the quote
    "x\\",
    "\\",
    "it\u2019s' OR '1'='1",  # right single quotation mark beside a real one
    "\uff07 OR \uff071\uff07=\uff071",  # fullwidth apostrophes
    "\u02bc OR TRUE --",  # modifier letter apostrophe
    '" OR ""="',
    "%' OR media_id LIKE '%",
    "a' || 'b",
    "*/ OR /* ",
    "x') OR ('1'='1",
    "x'\n OR TRUE --",
)
_FUZZ_ALPHABET = "'\"\\;-/*%_()=|&!\n\t ,.xaAOR1\u2019\u2018\uff07\u02bc\u2032`$#"
_FUZZ_WORDS = (" OR ", " AND ", "--", "/*", "*/", "1=1", "TRUE", "NULL", "DROP TABLE", "LIKE", "IN (")


def _fuzz(seed: int, n: int) -> list[str]:
    """Seeded hostile strings: quotes, comment markers, backslashes, unicode quotes and SQL words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [
            rng.choice(_FUZZ_WORDS) if rng.random() < 0.3 else rng.choice(_FUZZ_ALPHABET)
            for _ in range(rng.randint(1, 12))
        ]
        out.append("".join(parts))
    return out


# ==================================================================================================
# 1. Filters: typed values only
# ==================================================================================================


def _media_rows(ids: list[str]) -> pa.Table:
    """One ok `media` row per id, its uri derived from the id."""
    rows = [
        {
            "media_id": m,
            "uri": f"/data/{m}",
            "uris": [f"/data/{m}"],
            "kind": "text",
            "status": "ok",
            "feature_version": "f1",
            "run_id": "r1",
        }
        for m in ids
    ]
    return pa.Table.from_pylist(rows, schema=all_schemas(DIMS)["media"])


def _segment_rows(ids: list[str], per_item: int = 2) -> pa.Table:
    """`per_item` segments per id, each with a unit `fused` vector and a transcript saying walrus."""
    rows = []
    for n, m in enumerate(ids):
        for s in range(per_item):
            vec = np.zeros(DIMS.text, dtype=np.float32)
            vec[(n + s) % DIMS.text] = 1.0
            rows.append(
                {
                    "media_id": m,
                    "segment_index": s,
                    "start_s": float(s),
                    "end_s": float(s + 1),
                    "kind": "video" if n % 2 == 0 else "audio",
                    "fused": vec.tolist(),
                    "text": vec.tolist(),
                    "modalities": ["text"],
                    "transcript": f"the walrus number {n} part {s}",
                    "feature_version": "f1",
                    "run_id": "r1",
                }
            )
    return pa.Table.from_pylist(rows, schema=all_schemas(DIMS)["segments"])


# 100 ids: hostile literals that really exist (so "exactly the literal" is tested), fuzz, then hex.
LITERAL_IDS = [f"uri:{v}" for v in EVIL] + _fuzz(seed=7, n=15)
ALL_IDS = LITERAL_IDS + [f"{i:064x}" for i in range(100 - len(LITERAL_IDS))]


@pytest.fixture
def hostile_store(tmp_path: Path) -> Store:
    """A store whose `media` and `segments` tables hold 100 items, some with hostile literal ids."""
    store = Store(tmp_path / "store")
    store.ensure_tables(all_schemas(DIMS))
    store.write("media", _media_rows(ALL_IDS))
    store.write("segments", _segment_rows(ALL_IDS))
    return store


def _ids(store: Store, table: str, where: str | None = None) -> list[str]:
    """The sorted media_ids a built where-clause selects."""
    return sorted(store.read(table, ["media_id"], where=where).column("media_id").to_pylist())


def test_string_filter_helper_matches_only_the_literal(hostile_store: Store) -> None:
    """`in_list` (the one raw-string helper, used by delete/erase): each value is one quoted literal."""
    assert len(set(ALL_IDS)) == 100 and hostile_store.count("media") == 100
    for value in EVIL:
        assert hostile_store.count("media", in_list("media_id", [value])) == 0, value
        assert _ids(hostile_store, "media", in_list("media_id", [f"uri:{value}"])) == [f"uri:{value}"]
        assert hostile_store.count("media", in_list("uri", [f"/data/uri:{value}"])) == 1, value
    probes = _fuzz(seed=7, n=300) + _fuzz(seed=8, n=300)  # seed 7 repeats the 15 stored ones
    for value in probes:
        expected = [value] if value in ALL_IDS else []
        assert _ids(hostile_store, "media", in_list("media_id", [value])) == expected, repr(value)
    assert hostile_store.count("media", in_list("media_id", [*EVIL, *_fuzz(seed=8, n=300)])) == 0


def test_string_filter_helper_refuses_what_it_cannot_quote() -> None:
    """Identifiers are checked, never quoted; non-finite numbers and odd types are refused."""
    for column in ("media_id OR 1=1", "media_id; DROP TABLE media", "media_id--", "m\u0456dia_id", ""):
        with pytest.raises(ConfigError, match="invalid column name"):
            in_list(column, ["a"])
    for value in (float("nan"), float("inf"), b"bytes", None, ["a"]):
        with pytest.raises(ConfigError):
            sql_literal(value)
    assert in_list("media_id", []) == "FALSE"  # an empty list deletes nothing, not everything


def test_delete_with_hostile_values_removes_exactly_the_intended_rows(hostile_store: Store) -> None:
    """RELIABILITY §4: `delete(where=…)` on a 100-row table removes exactly the intended rows."""
    targets = [ALL_IDS[-1], ALL_IDS[-2], f"uri:{EVIL[0]}", LITERAL_IDS[-1]]
    where = in_list("media_id", [*targets, *EVIL, *_fuzz(seed=9, n=50)])
    before = hostile_store.versions()["media"]
    hostile_store.table("media").delete(where)
    assert _ids(hostile_store, "media") == sorted(set(ALL_IDS) - set(targets))
    assert hostile_store.versions()["media"] == before + 1


def test_typed_filters_in_search_match_only_the_literal(hostile_store: Store) -> None:
    """`equals_all` builds `col == lit(value)`: a hostile value is a plain string, typed columns refuse it."""
    query = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    for value in EVIL:
        assert search_segments(hostile_store, query, k=200, where=[("media_id", value)]) == []
        hits = search_segments(hostile_store, query, k=200, where=[("media_id", f"uri:{value}")])
        assert {h.media_id for h in hits} == {f"uri:{value}"} and len(hits) == 2
        assert search_segments(hostile_store, query, k=200, where=[("kind", f"video{value}")]) == []
    schema = hostile_store.table("segments").schema
    for column, raw in (("segment_index", "0 OR 1=1"), ("start_s", "nan"), ("start_s", "1; --")):
        with pytest.raises(ConfigError, match="takes a"):
            equals_all(schema, [(column, raw)])
    for column in ("kind OR 1=1", "kind--", "1", "media_id) OR (TRUE"):
        with pytest.raises(ConfigError, match="cannot filter on"):
            equals_all(schema, [(column, "video")])


def test_erase_with_hostile_ids_removes_exactly_those_items(hostile_store: Store) -> None:
    """`erase` deletes the named items from every table and nothing else, whatever their ids hold."""
    victims = [f"uri:{v}" for v in EVIL if "\n" not in v][:6]
    result = erase(hostile_store, victims)
    assert result["deleted"] == {"media": len(victims), "segments": 2 * len(victims)}
    assert _ids(hostile_store, "media") == sorted(set(ALL_IDS) - set(victims))
    assert hostile_store.count("segments") == 2 * (100 - len(victims))
    versions = hostile_store.versions()
    for bad in ("x' OR '1'='1", "'; DROP TABLE media; --", "1 OR 1=1", "*", ""):
        with pytest.raises(ConfigError, match="not a media_id"):
            erase(hostile_store, [bad])
    absent = erase(hostile_store, [f"uri:{v} (not stored)" for v in EVIL if "\n" not in v])
    assert absent["deleted"] == {} and hostile_store.versions() == versions  # no commit at all


@pytest.fixture
def indexed_store(hostile_store: Store) -> Store:
    """The hostile store with its full-text index, as a run leaves it."""
    ensure_indexes(hostile_store, min_rows=10**6)
    return hostile_store


def _cli(*args: str) -> tuple[int, str]:
    """Run the real `mmfs` command in-process; returns the exit code and stdout."""
    from typer.testing import CliRunner

    from mmfs.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_cli_where_is_typed_key_value_never_sql(indexed_store: Store) -> None:
    """`mmfs search --where` parses `column=value` into a typed literal; raw SQL fragments never run."""
    store = str(indexed_store.uri)
    versions = indexed_store.versions()
    base = ("search", "--text", "walrus", "--mode", "text", "-k", "500", "--store", store, "--json")
    code, out = _cli(*base)
    assert code == 0 and len(json.loads(out)["hits"]) == 200  # the query itself reaches every row
    code, out = _cli(*base, "--where", f"media_id=uri:{EVIL[0]}")
    assert code == 0 and {h["media_id"] for h in json.loads(out)["hits"]} == {f"uri:{EVIL[0]}"}
    for where in (
        f"media_id={EVIL[0]}",
        "kind=video' OR '1'='1",
        "kind=audio; DELETE FROM segments",
        "kind=video OR 1=1",
        "kind = 'video' --",
    ):
        code, out = _cli(*base, "--where", where)
        assert code == 0 and json.loads(out)["hits"] == [], where
    for where in ("segment_index=0 OR 1=1", "1=1", "kind OR 1=1=x", "TRUE", "media_id"):
        code, _ = _cli(*base, "--where", where)
        assert code == 2, where  # a usage error, nothing run
    assert indexed_store.versions() == versions and indexed_store.count("segments") == 200


def test_raw_sql_cannot_change_store_data(hostile_store: Store) -> None:
    """`mmfs sql` (analyst-only, DuckDB over views): DML and DDL cannot reach the Lance tables."""
    versions = hostile_store.versions()
    before = _ids(hostile_store, "media")
    for query in (
        "DELETE FROM media",
        "UPDATE media SET status = 'failed'",
        "INSERT INTO media (media_id) VALUES ('x')",
        "DROP TABLE media",
        "SELECT 1; DELETE FROM media",
    ):
        with pytest.raises(ConfigError, match="SQL error"):
            run_sql(hostile_store, query)
    run_sql(hostile_store, "DROP VIEW media")  # drops the connection's view, not the table
    assert run_sql(hostile_store, "SELECT count(*) AS n FROM media").to_pylist() == [{"n": 100}]
    assert hostile_store.versions() == versions and _ids(hostile_store, "media") == before
    code, _ = _cli("sql", "DELETE FROM media", "--store", str(hostile_store.uri))
    assert code == 2 and hostile_store.versions() == versions


def test_raw_sql_cannot_write_or_read_files(hostile_store: Store, tmp_path: Path) -> None:
    """`mmfs sql` must not write files (COPY … TO, into the store or anywhere) nor read arbitrary ones."""
    manifests = sorted((Path(hostile_store.uri) / "media.lance" / "_versions").iterdir())
    target = manifests[-1]  # a version manifest of the table: overwriting it corrupts that version
    original = target.read_bytes()
    with pytest.raises(ConfigError):
        run_sql(hostile_store, f"COPY (SELECT 1 AS a) TO '{target}' (FORMAT csv)")
    assert target.read_bytes() == original
    with pytest.raises(ConfigError):
        run_sql(hostile_store, f"COPY (SELECT 1 AS a) TO '{tmp_path / 'out.csv'}'")
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(ConfigError):
        run_sql(hostile_store, "SELECT content FROM read_text('/etc/passwd')")


# ==================================================================================================
# 2. Manifest paths and URIs: allowed roots, local files only
# ==================================================================================================

OUTSIDE = "outside the allowed roots"
SCHEME = "is not supported"
UNUSABLE = "not a usable path"


def _make_tree(tmp: Path) -> Path:
    """tmp/{outside.txt, outside_dir/, allowed_evil/, allowed/ with good items and escaping links}."""
    (tmp / "outside.txt").write_text(SECRET)
    (tmp / "outside_dir").mkdir()
    (tmp / "outside_dir" / "secret.txt").write_text(SECRET)
    (tmp / "allowed_evil").mkdir()  # shares the root's name as a prefix: must still be outside
    (tmp / "allowed_evil" / "x.txt").write_text(SECRET)
    root = tmp / "allowed"
    root.mkdir()
    (root / "good.txt").write_text("Lighthouses guide ships along rocky coasts at night.")
    mf.write_image(root / "pic.png")
    (root / "link.txt").symlink_to("../outside.txt")
    (root / "linkdir").symlink_to("../outside_dir", target_is_directory=True)
    (root / "loop_a").symlink_to("loop_b")
    (root / "loop_b").symlink_to("loop_a")
    return root


def _bad_uris(tmp: Path, fmt: str) -> dict[str, str]:
    """Each hostile manifest uri and the reason its refusal must give."""
    bad = {
        "../outside.txt": OUTSIDE,
        str(tmp / "outside.txt"): OUTSIDE,
        "link.txt": OUTSIDE,
        "linkdir/secret.txt": OUTSIDE,
        "../allowed_evil/x.txt": OUTSIDE,
        "sub/../../outside.txt": OUTSIDE,
        "good.txt/../../outside.txt": OUTSIDE,
        "file:///etc/passwd": OUTSIDE,
        f"file://{tmp / 'outside.txt'}": OUTSIDE,
        "/": OUTSIDE,
        "http://169.254.169.254/latest/meta-data/": "scheme 'http' " + SCHEME,
        "https://example.com/clip.mp4": "scheme 'https' " + SCHEME,
        "s3://other-bucket/clip.mp4": "scheme 's3' " + SCHEME,
        "gs://bucket/x.png": "scheme 'gs' " + SCHEME,
        "FILE:///etc/passwd": SCHEME,
        "loop_a": UNUSABLE,
        "y" * 5000: UNUSABLE,  # longer than a file name may be (ENAMETOOLONG)
        "../x' OR '1'='1.txt": OUTSIDE,
    }
    if fmt != "csv":  # a NUL byte cannot travel in our CSV writer; JSON and Parquet carry it
        bad["good\x00.txt"] = UNUSABLE
    return bad


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    """A manifest in the format its suffix names."""
    if path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif path.suffix == ".csv":
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["uri", "caption"], quoting=csv.QUOTE_ALL)
            writer.writeheader()
            writer.writerows({"uri": r["uri"], "caption": r.get("caption", "")} for r in rows)
    else:
        import pyarrow.parquet as pq

        table = pa.table({"uri": [r["uri"] for r in rows], "caption": [r.get("caption") for r in rows]})
        pq.write_table(table, path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_manifest_refuses_escapes_and_schemes(tmp_path: Path, fmt: str) -> None:
    """Traversal, absolute paths, symlinks out of the root and remote schemes: SourceRejected, each."""
    root = _make_tree(tmp_path)
    bad = _bad_uris(tmp_path, fmt)
    rows = [{"uri": "good.txt", "caption": "a note"}, {"uri": "pic.png"}] + [{"uri": u} for u in bad]
    manifest = _write_manifest(root / f"list.{fmt}", rows)
    items, rejected = discover([str(manifest)], SourcesConfig())
    assert [i.path for i in items] == [(root / "good.txt").resolve(), (root / "pic.png").resolve()]
    assert sorted(r.uri for r in rejected) == sorted(bad)
    for r in rejected:
        assert isinstance(r.error, SourceRejected) and r.error.code == ErrorCode.URI_REJECTED, r.uri
        assert bad[r.uri] in r.error.message, (r.uri, r.error.message)
        assert r.uri[:100] in r.error.message or repr(r.uri)[:100] in r.error.message  # findable


def test_allowed_roots_replace_the_manifest_folder(tmp_path: Path) -> None:
    """With `sources.allowed_roots`, only those roots count: the manifest's own folder is not added."""
    root = _make_tree(tmp_path)
    elsewhere = tmp_path / "manifests"
    elsewhere.mkdir()
    (elsewhere / "here.txt").write_text("beside the manifest")
    rows = [{"uri": str(root / "good.txt")}, {"uri": "here.txt"}, {"uri": f"{root}/../outside.txt"}]
    manifest = _write_manifest(elsewhere / "list.jsonl", rows)
    items, rejected = discover([str(manifest)], SourcesConfig(allowed_roots=[str(root)]))
    assert [i.path.name for i in items] == ["good.txt"]
    assert sorted(r.uri for r in rejected) == sorted(["here.txt", f"{root}/../outside.txt"])
    assert all(r.error.code == ErrorCode.URI_REJECTED and OUTSIDE in r.error.message for r in rejected)


def test_folder_walk_does_not_follow_links_out_of_the_folder(tmp_path: Path) -> None:
    """A folder given on the command line yields its own files: linked files and folders are skipped."""
    root = _make_tree(tmp_path)
    items, rejected = discover([str(root)], SourcesConfig())
    assert sorted(i.path.name for i in items) == ["good.txt", "pic.png"] and rejected == []


def _hostile_tar(path: Path) -> Path:
    """A tar whose members climb out (`../`), are absolute, or link out (CVE-2007-4559's shapes)."""
    with tarfile.open(path, "w") as tar:
        for name in ("../escaped.txt", "/tmp/mmfs-absolute-escaped.txt", "ok/../../escaped2.txt"):
            data = SECRET.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("evil-link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    return path


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real run over CSV, JSONL and Parquet manifests full of hostile rows, then a re-run."""
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "outside.txt").write_text(SECRET)
    (tmp / "outside_dir").mkdir()
    (tmp / "outside_dir" / "secret.txt").write_text(SECRET)
    manifests, expected_bad = [], {}
    for fmt in ("csv", "jsonl", "parquet"):
        folder = tmp / fmt
        folder.mkdir()
        (folder / f"good_{fmt}.txt").write_text(f"The {fmt} manifest lists this harmless note about owls.")
        (folder / f"link_{fmt}.txt").symlink_to("../outside.txt")
        (folder / "linkdir").symlink_to("../outside_dir", target_is_directory=True)
        bad = {
            f"../outside.txt#{fmt}": OUTSIDE,
            str(tmp / "outside.txt") + f"#{fmt}": OUTSIDE,
            f"link_{fmt}.txt": OUTSIDE,
            f"linkdir/../linkdir/secret.txt#{fmt}": OUTSIDE,
            f"file://{tmp}/outside.txt#{fmt}": OUTSIDE,
            f"http://169.254.169.254/latest/{fmt}": SCHEME,
            f"s3://other-bucket/{fmt}.mp4": SCHEME,
            f"../{fmt}' OR '1'='1.txt": OUTSIDE,
        }
        if fmt == "jsonl":
            bad["file:///etc/passwd"] = OUTSIDE
            bad["\\' OR media_id IS NOT NULL --"] = "no such file"  # inside the root, just absent
        rows = [{"uri": f"good_{fmt}.txt"}] + [{"uri": u} for u in bad]
        if fmt == "jsonl":
            mf.write_image(folder / "pic.png")
            _hostile_tar(folder / "evil.tar")
            with zipfile.ZipFile(folder / "evil.zip", "w") as zf:
                zf.writestr("../zip-escaped.txt", SECRET)
            rows += [{"uri": "pic.png"}, {"uri": "evil.tar"}, {"uri": "evil.zip"}]
        manifests.append(str(_write_manifest(folder / f"list.{fmt}", rows)))
        expected_bad.update(bad)
    cfg = config_from_dict({"index": {"auto": False}, "maintenance": {"auto": False}})
    store_dir = tmp / "store"
    first = run_pipeline(manifests, cfg, store_dir, show_progress=False)
    quarantine_first = Store(store_dir).read("quarantine").to_pylist()
    second = run_pipeline(manifests, cfg, store_dir, show_progress=False)
    return {
        "tmp": tmp,
        "store": Store(store_dir),
        "bad": expected_bad,
        "first": first,
        "second": second,
        "quarantine_first": quarantine_first,
    }


@pytest.mark.slow
def test_run_quarantines_each_refused_uri_with_its_reason(hostile_run: dict[str, Any]) -> None:
    """Every refused manifest row is one `read`-stage quarantine row saying why; nothing else is lost."""
    store, bad = hostile_run["store"], hostile_run["bad"]
    rows = store.read("quarantine").to_pylist()
    by_uri: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_uri.setdefault(row["uri"], []).append(row)
    for uri, reason in bad.items():
        assert len(by_uri.get(uri, [])) == 1, (uri, sorted(by_uri))
        row = by_uri[uri][0]
        code = ErrorCode.NOT_FOUND if reason == "no such file" else ErrorCode.URI_REJECTED
        assert (row["stage"], row["error_code"], row["error_type"]) == ("read", int(code), "SourceRejected")
        assert reason in row["message"] and row["retryable"] is False, row
    first = hostile_run["first"]
    assert first.n_inputs == len(bad) + 6  # 3 notes, a picture, a tar and a zip
    assert first.n_ok == 4 and first.n_quarantined == len(bad) + 2


@pytest.mark.slow
def test_run_lands_the_good_items_and_nothing_from_outside(hostile_run: dict[str, Any]) -> None:
    """The good items are ingested; no row holds a path or a byte from outside the roots."""
    store, tmp = hostile_run["store"], hostile_run["tmp"]
    media = store.read("media", ["media_id", "uri", "status", "bytes"]).to_pylist()
    ok = sorted(Path(m["uri"]).name for m in media if m["status"] == "ok")
    assert ok == ["good_csv.txt", "good_jsonl.txt", "good_parquet.txt", "pic.png"]
    allowed = [(tmp / fmt).resolve() for fmt in ("csv", "jsonl", "parquet")]
    refused = {r["media_id"] for r in store.read("quarantine", ["media_id", "stage"]).to_pylist()}
    for m in media:
        if m["media_id"].startswith("uri:"):  # a refused uri: its failed row, as named, nothing read
            assert m["status"] == "failed" and m["bytes"] is None and m["media_id"] in refused, m
            continue
        assert any(root in Path(m["uri"]).parents for root in allowed), m["uri"]
    texts = store.read("text", ["text"]).column("text").to_pylist()
    assert texts and not any(SECRET in t for t in texts)


@pytest.mark.slow
def test_rerun_neither_duplicates_nor_drops_hostile_quarantine_rows(hostile_run: dict[str, Any]) -> None:
    """The re-run looks the refused uris up with a built filter: same rows, no duplicate, none widened."""
    first = sorted((r["media_id"], r["stage"]) for r in hostile_run["quarantine_first"])
    again = sorted((r["media_id"], r["stage"]) for r in hostile_run["store"].read("quarantine").to_pylist())
    assert again == first and len(set(again)) == len(again)
    second = hostile_run["second"]
    assert second.n_ok == 0 and second.rows.get("media", 0) == 0


@pytest.mark.slow
def test_archives_given_as_input_are_never_extracted(hostile_run: dict[str, Any]) -> None:
    """A tar or zip listed as an item is quarantined as an input error; none of its members is written."""
    store, tmp = hostile_run["store"], hostile_run["tmp"]
    rows = store.read("quarantine", ["uri", "error_code"]).to_pylist()
    for name in ("evil.tar", "evil.zip"):
        codes = [r["error_code"] for r in rows if r["uri"].endswith(name)]
        assert len(codes) == 1 and 1000 < codes[0] < 1100, (name, codes)  # an input error, not a crash
    written = {p.name for p in tmp.parent.rglob("*escaped*")}
    assert written == set() and not Path("/tmp/mmfs-absolute-escaped.txt").exists()


# ==================================================================================================
# 3. Model weights: safetensors or weights_only, pinned by sha256
# ==================================================================================================


class _Touch:
    """Unpickling this calls `Path.touch(marker)`: the anemoi-core#1416 shape, without os.system."""

    def __init__(self, marker: Path) -> None:
        """Remember the marker file the payload would create."""
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        """The call pickle records, and an unrestricted unpickler makes."""
        return (Path.touch, (self.marker,))


class _Exec:
    """Unpickling this runs Python source that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        """Remember the marker file the payload would create."""
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        """The call pickle records, and an unrestricted unpickler makes."""
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _payloads(tmp: Path, marker: Path) -> dict[str, Path]:
    """One hostile state dict as a zip and a legacy checkpoint, a bare pickle and a fake .safetensors."""
    import torch

    state = {"weight": _Touch(marker), "bias": _Exec(marker), "model_state": {"lstm": _Touch(marker)}}
    out = {name: tmp / name for name in ("zip.pt", "legacy.pth", "bare.pkl", "renamed.safetensors")}
    torch.save(state, out["zip.pt"])
    torch.save(state, out["legacy.pth"], _use_new_zipfile_serialization=False)
    out["bare.pkl"].write_bytes(pickle.dumps(state, protocol=2))
    shutil.copy(out["zip.pt"], out["renamed.safetensors"])
    return out


def test_crafted_pickle_payload_is_live(tmp_path: Path) -> None:
    """Control: an unrestricted unpickle of the payload does create the marker, so the checks below bite."""
    marker = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_Touch(marker)))
    assert marker.exists()


def test_weights_loader_refuses_crafted_pickles_without_side_effects(tmp_path: Path) -> None:
    """`load_state_dict` refuses every shape of the payload; the marker file is never created."""
    from mmfs.encoders.weights import load_state_dict

    marker = tmp_path / "pwned"
    for name, path in _payloads(tmp_path, marker).items():
        with pytest.raises(EncoderError) as info:
            load_state_dict(path, owner="test.encoder")
        err = info.value
        assert err.code == ErrorCode.ENCODER_UNAVAILABLE and str(path) in err.message, name
        assert err.message.startswith("test.encoder: cannot load weights"), err.message
        wanted = "not a valid safetensors file" if name.endswith(".safetensors") else "weights_only=True"
        assert wanted in err.message and "\n" not in err.message, err.message
        assert not marker.exists(), name


def test_weights_loader_reads_plain_tensors(tmp_path: Path) -> None:
    """What the loader accepts: real safetensors, and torch checkpoints of tensors and containers."""
    import torch
    from safetensors.torch import save_file

    from mmfs.encoders.weights import load_state_dict

    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(3)}
    save_file(tensors, tmp_path / "m.safetensors")
    torch.save({"model_state": tensors, "step": 7}, tmp_path / "m.pt")
    loaded = load_state_dict(tmp_path / "m.safetensors")
    assert loaded.keys() == tensors.keys() and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    checkpoint = load_state_dict(tmp_path / "m.pt")
    assert checkpoint["step"] == 7 and torch.equal(checkpoint["model_state"]["w"], tensors["w"])
    torch.save([tensors["w"]], tmp_path / "list.pt")
    with pytest.raises(EncoderError, match="not a state dict"):
        load_state_dict(tmp_path / "list.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(EncoderError, match="not a readable checkpoint"):
        load_state_dict(tmp_path / "empty.pt")


def _encoder_classes() -> list[type[Any]]:
    """The encoders that read torch checkpoints (imported lazily: torch is heavy)."""
    from mmfs.encoders.audio_resemblyzer import ResemblyzerAudioEncoder
    from mmfs.encoders.image_efficientnet import EfficientNetLite0Encoder

    return [ResemblyzerAudioEncoder, EfficientNetLite0Encoder]


@pytest.mark.parametrize("index", [0, 1], ids=["audio.resemblyzer", "image.efficientnet_lite0"])
def test_encoders_refuse_crafted_checkpoints(tmp_path: Path, index: int) -> None:
    """Torch encoders' `load()`: a hostile checkpoint fails the pin and, unpinned, fails weights_only."""
    base = _encoder_classes()[index]
    marker = tmp_path / "pwned"
    for path in _payloads(tmp_path, marker).values():
        pinned = type("Pinned", (base,), {"weight_files": lambda self, p=path: [p]})
        with pytest.raises(EncoderError, match="refusing to load") as info:
            pinned(device="cpu").load()  # the real pin: refused before a byte is unpickled
        assert info.value.code == ErrorCode.ENCODER_UNAVAILABLE
        unpinned = type("Unpinned", (pinned,), {"pinned_sha256": None})
        with pytest.raises(EncoderError, match=f"{base.name}: cannot load weights from") as info:
            unpinned(device="cpu").load()
        assert info.value.code == ErrorCode.ENCODER_UNAVAILABLE
        assert "weights_only=True" in info.value.message or "safetensors" in info.value.message
        assert not marker.exists(), path.name


@pytest.mark.parametrize("index", [0, 1], ids=["audio.resemblyzer", "image.efficientnet_lite0"])
def test_tampered_weights_fail_the_sha256_pin(tmp_path: Path, index: int) -> None:
    """One flipped byte in the real weight file: the pin refuses it, naming both digests."""
    base = _encoder_classes()[index]
    real = base(device="cpu").weight_files()[0]
    tampered = tmp_path / real.name
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    cls = type("Tampered", (base,), {"weight_files": lambda self: [tampered]})
    with pytest.raises(EncoderError, match=rf"weights sha256 [0-9a-f]{{64}} != pinned {base.pinned_sha256}"):
        cls(device="cpu").load()
    assert base(device="cpu").weights_sha256() == base.pinned_sha256  # the installed file is intact


def test_text_encoder_loads_safetensors_only(tmp_path: Path) -> None:
    """MiniLM's folder with the safetensors swapped for a hostile `pytorch_model.bin`: refused, no marker."""
    from mmfs.encoders.text_minilm import MiniLMTextEncoder

    model = tmp_path / "model"
    shutil.copytree(MiniLMTextEncoder(device="cpu").model_dir(), model, ignore=_ignore_safetensors)
    marker = tmp_path / "pwned"
    import torch

    torch.save({"embeddings.word_embeddings.weight": _Touch(marker)}, model / "pytorch_model.bin")
    members = {"model_dir": lambda self: model, "pinned_sha256": None}
    cls = type("Swapped", (MiniLMTextEncoder,), members)
    with pytest.raises(EncoderError, match="cannot load model") as info:
        cls(device="cpu").load()
    assert info.value.code == ErrorCode.ENCODER_UNAVAILABLE and not marker.exists()
    pinned = type("SwappedPinned", (MiniLMTextEncoder,), {"model_dir": lambda self: model})
    with pytest.raises(EncoderError, match="cannot read weights"):
        pinned(device="cpu").load()  # the pinned file is gone: refused before any model code runs


def _ignore_safetensors(folder: str, names: list[str]) -> list[str]:
    """`shutil.copytree` ignore hook: leave the safetensors weights behind."""
    return [n for n in names if n.endswith(".safetensors")]


# ==================================================================================================
# 4 and 5. The package's own code: argv-only subprocesses, no archive extraction, no pickle loads
# ==================================================================================================

SHELL_CALLS = {
    "os.system",
    "os.popen",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "asyncio.create_subprocess_shell",
    "pty.spawn",
}
SHELL_PREFIXES = ("os.exec", "os.spawn")
ARGV_CALLS = {
    "subprocess.run",
    "subprocess.Popen",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
}
ARCHIVE_CALLS = {
    "shutil.unpack_archive",
    "tarfile.open",
    "tarfile.TarFile",
    "tarfile.TarFile.open",
    "zipfile.ZipFile",
    "zipfile.Path",
}
ARCHIVE_MODULES = {"tarfile", "zipfile", "py7zr", "rarfile", "patoolib", "libarchive"}
UNSAFE_LOADS = {
    "pickle.load",
    "pickle.Unpickler",
    "_pickle.load",
    "_pickle.loads",
    "cPickle.load",
    "cPickle.loads",
    "dill.load",
    "dill.loads",
    "cloudpickle.load",
    "cloudpickle.loads",
    "joblib.load",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "yaml.load",
    "yaml.unsafe_load",
    "yaml.full_load",
    "pandas.read_pickle",
    "torch.jit.load",
}
# pickle.loads of bytes this process's own workers pickled (never data read from the store or a user):
# RELIABILITY §4 accepts this inside a trusted cluster. Keyed by file name, so a move keeps the reason.
TRUSTED_PICKLE_LOADS = {"ray.py": "mmfs/runners/ray.py: extracted items between its own tasks"}
# The NumPy engines' checkpoint reader: torch's own format is a zip archive read member by member into
# memory (nothing extracted to disk, compressed members refused) through an unpickler whose find_class
# admits only containers and tensor rebuilds, the weights_only=True rule without torch
# (test_the_checkpoint_reader_is_the_one_restricted_unpickler and the crafted-checkpoint tests).
TRUSTED_CHECKPOINT_READERS = {"torch_checkpoint.py": "mmfs/encoders/torch_checkpoint.py"}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted origin, from `import x as y` and `from x import y as z`."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[(a.asname or a.name).split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """`a.b.c` for a call target, with its root name resolved through the imports; None if dynamic."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def _violations(source: str, filename: str) -> list[str]:
    """Shell use, string commands, archive extraction and pickle-capable loads in one module."""
    tree = ast.parse(source, filename)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            names = [
                n for n in names if not (n == "zipfile" and Path(filename).name in TRUSTED_CHECKPOINT_READERS)
            ]
            found += [f"{filename}:{node.lineno}: imports {n}" for n in names if n in ARCHIVE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases) or ""
        where = f"{filename}:{node.lineno}: {name or ast.unparse(node.func)}"
        shell = [k for k in node.keywords if k.arg == "shell"]
        if shell and not (isinstance(shell[0].value, ast.Constant) and shell[0].value.value is False):
            found.append(f"{where} with shell={ast.unparse(shell[0].value)}")
        if name in SHELL_CALLS or name.startswith(SHELL_PREFIXES):
            found.append(f"{where} runs a shell or replaces the process")
        if name in ARGV_CALLS and node.args and isinstance(node.args[0], ast.Constant | ast.JoinedStr):
            found.append(f"{where} given a command string, not an argument list")
        attr = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        reader = Path(filename).name in TRUSTED_CHECKPOINT_READERS and name == "zipfile.ZipFile"
        if (name in ARCHIVE_CALLS and not reader) or attr in ("extractall", "unpack_archive"):
            found.append(f"{where} opens or extracts an archive")
        found += _unsafe_load(node, name, where, filename)
    return found


def _unsafe_load(node: ast.Call, name: str, where: str, filename: str) -> list[str]:
    """Loads that can run pickled code: torch.load without weights_only=True, np.load with pickles, …"""
    kwargs = {k.arg: k.value for k in node.keywords}
    if name == "torch.load":
        flag = kwargs.get("weights_only")
        if not (isinstance(flag, ast.Constant) and flag.value is True):
            return [f"{where} without weights_only=True"]
    if name in ("numpy.load", "np.load"):
        flag = kwargs.get("allow_pickle")
        if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
            return [f"{where} with allow_pickle"]
    if name in UNSAFE_LOADS:
        return [f"{where} can run pickled or tagged code"]
    if name == "pickle.loads" and Path(filename).name not in TRUSTED_PICKLE_LOADS:
        return [f"{where} unpickles bytes (allowed only for a process's own workers)"]
    return []


def _package_sources() -> Iterator[tuple[str, str]]:
    """(path relative to the repository, source) for every module of the mmfs package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        yield str(path.relative_to(PACKAGE.parent)), path.read_text(encoding="utf-8")


def test_the_checker_catches_each_violation() -> None:
    """The AST checker itself: every forbidden shape in a sample module is reported."""
    sample = """
import os, subprocess as sp, tarfile
from os import popen as po
from subprocess import run
import torch, numpy as np, pickle, shutil
sp.run("ls -l", shell=True)
run(f"ffmpeg -i {name}")
sp.check_output(["ls"], shell=flag)
os.system("rm -rf /")
po("ls")
os.execvp("sh", ["sh"])
tarfile.open("a.tar").extractall("/tmp")
shutil.unpack_archive("a.zip")
torch.load("w.pt")
torch.load("w.pt", weights_only=False)
np.load("a.npy", allow_pickle=True)
pickle.load(fh)
pickle.loads(blob)
"""
    found = _violations(sample, "sample.py")
    expected = {
        6: "shell=True",
        7: "command string",
        8: "shell=flag",
        9: "os.system runs a shell",
        10: "os.popen runs a shell",
        11: "os.execvp runs a shell",
        2: "imports tarfile",
        12: "extracts an archive",
        13: "shutil.unpack_archive opens or extracts",
        14: "without weights_only=True",
        15: "without weights_only=True",
        16: "with allow_pickle",
        17: "pickle.load can run pickled",
        18: "pickle.loads unpickles bytes",
    }
    for line, text in expected.items():
        assert any(f.startswith(f"sample.py:{line}: ") and text in f for f in found), (line, text, found)
    assert len({f.split(": ")[0] for f in found}) == len(expected), found
    clean = 'import subprocess\nsubprocess.run(["ffprobe", path], check=True, timeout=5, shell=False)\n'
    assert _violations(clean, "clean.py") == []


def test_package_runs_no_shell_and_extracts_no_archive() -> None:
    """mmfs itself: argv-only subprocesses, no archive extraction, no pickle-capable loads (G17)."""
    found = [v for name, source in _package_sources() for v in _violations(source, name)]
    assert found == []
    assert any(name.endswith("weights.py") for name, _ in _package_sources())  # the scan saw the package


def test_the_checkpoint_reader_is_the_one_restricted_unpickler() -> None:
    """Every pickle.Unpickler subclass in the package is in torch_checkpoint.py and overrides find_class."""
    subclasses = []
    for name, source in _package_sources():
        tree = ast.parse(source)
        aliases = _aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                _dotted(b, aliases) == "pickle.Unpickler" for b in node.bases
            ):
                overrides = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
                subclasses.append((Path(name).name, node.name, "find_class" in overrides))
    assert subclasses and all(f in TRUSTED_CHECKPOINT_READERS and ok for f, _, ok in subclasses), subclasses


def test_every_torch_load_in_the_package_is_weights_only() -> None:
    """The one checkpoint reader is `mmfs.encoders.weights`; encoders go through it."""
    calls = set()
    for name, source in _package_sources():
        tree = ast.parse(source)
        aliases = _aliases(tree)
        if any(isinstance(n, ast.Call) and _dotted(n.func, aliases) == "torch.load" for n in ast.walk(tree)):
            calls.add(name)
    assert calls == {os.path.join("mmfs", "encoders", "weights.py")}
