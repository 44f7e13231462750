"""Sources: folders, globs, manifests with allowed roots, sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmfs.config import SourcesConfig
from mmfs.errors import ConfigError, ErrorCode, SourceRejected
from mmfs.pipelines.sources import check_arguments, discover
from tests import media_factory as mf


def test_folder_pairs_sidecars_and_skips_hidden(tmp_path: Path) -> None:
    mf.write_wav(tmp_path / "talk.wav")
    (tmp_path / "talk.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    mf.write_image(tmp_path / "sub" / "pic.png")
    (tmp_path / "notes.txt").write_text("a document on its own")
    mf.write_image(tmp_path / ".hidden" / "x.png")
    items, rejected = discover([str(tmp_path)], SourcesConfig())
    names = sorted(i.path.name for i in items)
    assert names == ["notes.txt", "pic.png", "talk.wav"]
    talk = next(i for i in items if i.path.name == "talk.wav")
    assert talk.sidecar is not None and talk.sidecar.name == "talk.srt"
    assert rejected == []


def test_non_recursive_and_globs(tmp_path: Path) -> None:
    mf.write_image(tmp_path / "a.png")
    mf.write_image(tmp_path / "sub" / "b.png")
    items, _ = discover([str(tmp_path)], SourcesConfig(recursive=False))
    assert [i.path.name for i in items] == ["a.png"]
    items, _ = discover([str(tmp_path / "**" / "*.png")], SourcesConfig())
    assert sorted(i.path.name for i in items) == ["a.png", "b.png"]


def test_missing_path_is_rejected(tmp_path: Path) -> None:
    items, rejected = discover([str(tmp_path / "nope.mp4")], SourcesConfig())
    assert items == []
    assert rejected[0].error.code == ErrorCode.NOT_FOUND


def test_manifest_keeps_metadata_and_rejects_escapes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mf.write_image(data / "a.png")
    mf.write_image(data / "b.png")
    manifest = data / "list.jsonl"
    rows = [
        {"uri": "a.png", "caption": "a textured square", "split": "train"},
        {"uri": "b.png", "split": "val"},
        {"uri": "../../etc/passwd"},
        {"uri": "s3://bucket/x.mp4"},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    items, rejected = discover([str(manifest)], SourcesConfig())
    assert [i.path.name for i in items] == ["a.png", "b.png"]
    assert items[0].manifest_text == "a textured square"
    assert items[0].metadata == {"split": "train"}
    codes = sorted(r.error.code for r in rejected)
    assert codes == [ErrorCode.URI_REJECTED, ErrorCode.URI_REJECTED]


def test_csv_manifest_with_allowed_root(tmp_path: Path) -> None:
    media = tmp_path / "media"
    mf.write_image(media / "c.png")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "m.csv").write_text(f"uri,text\n{media / 'c.png'},hello\n")
    items, rejected = discover([str(manifests / "m.csv")], SourcesConfig())
    assert items == [] and rejected[0].error.code == ErrorCode.URI_REJECTED
    items, rejected = discover([str(manifests / "m.csv")], SourcesConfig(allowed_roots=[str(media)]))
    assert [i.path.name for i in items] == ["c.png"] and rejected == []
    assert items[0].manifest_text == "hello"


def test_a_store_inside_an_input_folder_is_not_an_input(tmp_path: Path) -> None:
    mf.write_image(tmp_path / "a.png")
    store = tmp_path / "store"
    (store / "media.lance" / "data").mkdir(parents=True)
    (store / "media.lance" / "data" / "0.lance").write_bytes(b"LANC")
    (store / "mmfs.log").write_text("a log line")
    items, _ = discover([str(tmp_path)], SourcesConfig(), exclude=store)
    assert [i.path.name for i in items] == ["a.png"]
    everything, _ = discover([str(tmp_path)], SourcesConfig())
    assert len(everything) == 3  # without `exclude` the store's files would be inputs


def test_arguments_that_name_nothing_are_a_usage_error(tmp_path: Path) -> None:
    mf.write_image(tmp_path / "a.png")
    missing = str(tmp_path / "nope")
    _, rejected = discover([missing], SourcesConfig())
    with pytest.raises(ConfigError, match=r"nothing to read: .*nope: no such file or directory"):
        check_arguments([missing], rejected)
    _, rejected = discover([str(tmp_path / "a.png"), missing], SourcesConfig())
    check_arguments([str(tmp_path / "a.png"), missing], rejected)  # one good path: the run goes on
    assert [r.uri for r in rejected] == [missing]


def test_the_listing_columns_hold_each_file_and_its_stat(tmp_path: Path) -> None:
    """`list_inputs` gives a listed file's stat with it (what the hash cache compares) and its sidecar."""
    import os

    from mmfs.pipelines.sources import list_inputs

    mf.write_wav(tmp_path / "talk.wav")
    (tmp_path / "talk.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    (tmp_path / "notes.TXT").write_text("a document on its own")
    (tmp_path / "notes.vtt").write_text("WEBVTT\n")  # a sidecar-suffixed pair: both are items
    os.symlink(tmp_path / "talk.wav", tmp_path / "link.wav")  # links are not listed from folders
    inputs, _ = list_inputs([str(tmp_path)], SourcesConfig())
    rows = inputs.table.to_pylist()
    assert [Path(r["uri"]).name for r in rows] == ["notes.TXT", "notes.vtt", "talk.wav"]
    for row in rows:
        st = os.stat(row["uri"])
        assert (row["size"], row["mtime_ns"], row["inode"]) == (st.st_size, st.st_mtime_ns, st.st_ino)
    sidecars = {Path(r["uri"]).name: r["sidecar"] and Path(r["sidecar"]).name for r in rows}
    assert sidecars == {"notes.TXT": "notes.vtt", "notes.vtt": None, "talk.wav": "talk.srt"}


def test_manifest_rows_resolve_as_one_by_one_and_carry_their_stat(tmp_path: Path) -> None:
    """The manifest's batched resolution (each folder once, each file `lstat`-ed once) gives every row
    what `_resolve_uri` and `sidecar_for` give it alone: the same path, sidecar, code and message; and
    the listing's stat columns hold each item's stat, so planning does not stat it again."""
    import os

    from mmfs.pipelines.sources import _resolve_uri, list_inputs, sidecar_for

    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "sub").mkdir(parents=True)
    outside.mkdir()
    for name in ("a.png", "b.mp4", "sub/c.wav", "it's.txt"):
        (data / name).write_bytes(b"bytes of " + name.encode())
    (data / "b.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    (outside / "secret.txt").write_text("not for mmfs")
    os.symlink(data / "a.png", data / "link.png")  # inside: the target's path
    os.symlink(outside / "secret.txt", data / "escape.txt")  # outside the root through a link
    os.symlink(data / "sub", data / "subdir-link")  # a linked folder
    uris = [
        "a.png", "./b.mp4", "sub/../a.png", str(data / "sub" / "c.wav"), "link.png", "escape.txt",
        "subdir-link/c.wav", "missing.png", "sub", "sub/.", "..", "it's.txt", "bad\0name.png",
        "x" * 300 + ".png", "file://" + str(data / "a.png"), "", "http://host/a.png",
    ]  # fmt: skip
    manifest = data / "list.jsonl"
    manifest.write_text("".join(json.dumps({"uri": u, "n": i}) + "\n" for i, u in enumerate(uris)))
    roots = [data.resolve()]
    expected_items, expected_rejected = [], []
    for uri in uris:
        try:
            local = _resolve_uri(uri, data, roots)
        except SourceRejected as err:
            expected_rejected.append((uri, int(err.code), err.message))
            continue
        sidecar = sidecar_for(local)
        expected_items.append((str(local), str(sidecar) if sidecar else None))
    inputs, rejected = list_inputs([str(manifest)], SourcesConfig())
    items = inputs.items()
    got = sorted((i.uri, str(i.sidecar) if i.sidecar else None) for i in items)
    assert got == sorted(set(expected_items))  # rows of the same file are one item
    assert sorted((r.uri, int(r.error.code), r.error.message) for r in rejected) == sorted(expected_rejected)
    assert len(expected_rejected) >= 8 and any(s for _, s in got)  # the cases above do what they say
    for row in inputs.table.to_pylist():
        st = os.stat(row["uri"])
        assert (row["size"], row["mtime_ns"], row["inode"]) == (st.st_size, st.st_mtime_ns, st.st_ino)


def test_an_input_named_twice_is_one_input_and_none_is_lost(tmp_path: Path) -> None:
    """A file given both in its folder and by name (or twice in a manifest) is one row; the others stay."""
    from mmfs.pipelines.sources import list_inputs

    for name in ("a.png", "b.png", "c.png", "d.png"):
        (tmp_path / name).write_bytes(name.encode())
    paths = [str(tmp_path / "c.png"), str(tmp_path), str(tmp_path / "a.png")]
    inputs, _ = list_inputs(paths, SourcesConfig())
    assert [Path(u).name for u in inputs.table.column("uri").to_pylist()] == [
        "a.png",
        "b.png",
        "c.png",
        "d.png",
    ]
    assert [Path(i.uri).name for i in inputs.items()] == ["a.png", "b.png", "c.png", "d.png"]
