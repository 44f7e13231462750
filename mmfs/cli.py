"""The `mmfs` command: parses, calls pipelines or the store, prints. Thin on purpose.

Exit codes: 0 done (quarantined items included), 2 bad usage or config, 1 the run failed.
`--json` prints one JSON document on stdout; logs and progress go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mmfs.errors import ConfigError, MmfsError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multimodal pipeline and feature store.")
log = logging.getLogger("mmfs")

StoreOpt = Annotated[str, typer.Option("--store", help="store directory or URI")]
RunOpt = Annotated[str | None, typer.Option("--run", help="read the store as this run left it (read-only)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")]
DEMO_STORE = "./mmfs-demo-store"
DEMO_QUERY = "a white cockatoo on a perch"


def _setup_logging(store: str | None, verbose: bool = False) -> None:
    """One readable line per event on stderr; full details in `<store>/mmfs.log` for local stores."""
    root = logging.getLogger("mmfs")
    if root.handlers:
        return
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(logging.Formatter("mmfs: %(message)s"))
    root.addHandler(console)
    if store and "://" not in store:
        try:
            Path(store).mkdir(parents=True, exist_ok=True)
            details = logging.FileHandler(Path(store) / "mmfs.log")
        except OSError:
            return  # not a usable folder: opening the store will say so in one line
        details.setLevel(logging.DEBUG)
        details.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(details)


def _guard(fn: Callable[[], Any], as_json: bool = False) -> Any:
    """Map errors to exit codes with one readable line; the traceback goes to the log file.

    With `--json` the error is also one JSON document on stdout (`{"error": {...}}`), so a caller that
    parses stdout always gets the document `--json` promises.
    """
    try:
        return fn()
    except ConfigError as err:
        _fail(as_json, 2, f"mmfs: error: {err.message}", err)
    except MmfsError as err:
        log.debug("run failed", exc_info=True)
        _fail(as_json, 1, f"mmfs: error: {err}", err)
    except KeyboardInterrupt:
        _fail(as_json, 1, "mmfs: interrupted", None)
    except Exception as err:  # a bug, not bad input: one line here, the traceback in the log
        log.debug("unexpected error", exc_info=True)
        _fail(as_json, 1, f"mmfs: internal error: {type(err).__name__}: {err} (traceback in the log)", None)


def _fail(as_json: bool, exit_code: int, line: str, err: MmfsError | None) -> None:
    """Print the error line on stderr (and its JSON document on stdout), then exit with `exit_code`."""
    typer.echo(line, err=True)
    if as_json:
        doc: dict[str, Any] = {"exit_code": exit_code, "message": line.removeprefix("mmfs: ")}
        if err is not None:
            doc.update(code=int(err.code), code_name=err.code.name, message=err.message)
        typer.echo(json.dumps({"error": doc}, indent=2))
    raise typer.Exit(exit_code) from None


RehashOpt = Annotated[
    bool, typer.Option("--rehash", help="hash every input again (ignore the hash cache of unchanged files)")
]


def _emit(as_json: bool, doc: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(doc, indent=2, default=str) if as_json else text)


@app.command()
def run(
    paths: Annotated[list[str], typer.Argument(help="files, folders, globs or manifests")],
    store: StoreOpt = "./mmfs-store",
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file")] = None,
    runner: Annotated[str | None, typer.Option("--runner", help="local | ray | beam")] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="ray: cluster address (ray://head:10001, auto)")
    ] = None,
    beam_option: Annotated[
        list[str] | None,
        typer.Option("--beam-option", help="beam: a pipeline option, repeatable (--beam-option=--runner=X)"),
    ] = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress")] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=1, max=65535, help="serve Prometheus /metrics during the run"),
    ] = None,
    metrics_file: Annotated[
        str | None,
        typer.Option("--metrics-file", help="write Prometheus textfile-collector format at the end"),
    ] = None,
    rehash: RehashOpt = False,
) -> None:
    """Run the pipeline over PATHS into the store."""
    _setup_logging(store)

    def go() -> None:
        from mmfs.config import load_config
        from mmfs.pipelines.run import run_pipeline
        from mmfs.report import run_text

        cfg = load_config(config)
        update: dict[str, object] = {}
        if runner is not None:
            if runner not in ("local", "ray", "beam"):
                raise ConfigError(f"--runner takes local, ray or beam, not {runner!r}")
            update["kind"] = runner
        if address is not None:
            update["address"] = address
        if beam_option:
            update["beam_options"] = [*cfg.runner.beam_options, *beam_option]
        if update:
            runner_cfg = type(cfg.runner).model_validate({**cfg.runner.model_dump(), **update})
            cfg = cfg.model_copy(update={"runner": runner_cfg})
        from mmfs.ops.observe import observed_run  # metrics and lineage, as configured

        with observed_run(cfg, paths, store, metrics_port=metrics_port, metrics_file=metrics_file) as record:
            summary = run_pipeline(paths, cfg, store, show_progress=not quiet, rehash=rehash)
            record(summary)
        _emit(as_json, summary.as_dict(), run_text(summary))

    _guard(go, as_json)


@app.command()
def watch(
    paths: Annotated[list[str], typer.Argument(help="folders (or files) to watch")],
    store: StoreOpt = "./mmfs-store",
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file")] = None,
    debounce_ms: Annotated[
        int | None, typer.Option("--debounce-ms", min=1, help="most time to gather one change set")
    ] = None,
) -> None:
    """Run the pipeline on new or changed files under PATHS until Ctrl-C or SIGTERM (between commits)."""
    _setup_logging(store)

    def go() -> None:
        from mmfs.config import load_config
        from mmfs.ops.watch import StopOnSignal
        from mmfs.ops.watch import watch as watch_paths
        from mmfs.report import run_text

        cfg = load_config(config)
        if debounce_ms is not None:
            cfg = cfg.model_copy(update={"watch": cfg.watch.model_copy(update={"debounce_ms": debounce_ms})})
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise ConfigError(f"cannot watch {', '.join(missing)}: no such file or folder")
        with StopOnSignal() as stopper:
            stats = watch_paths(
                paths, cfg, store, stop=stopper.event, on_run=lambda s: typer.echo(run_text(s), err=True)
            )
        typer.echo(
            f"mmfs: watch stopped after {stats.runs} runs: {stats.n_ok} items ok, "
            f"{stats.n_quarantined} quarantined",
            err=True,
        )

    _guard(go)


@app.command()
def plan(
    paths: Annotated[list[str], typer.Argument(help="files, folders, globs or manifests")],
    store: StoreOpt = "./mmfs-store",
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file")] = None,
    as_json: JsonOpt = False,
    rehash: RehashOpt = False,
) -> None:
    """What `mmfs run` would do with PATHS and this config: new, stale, unchanged items (a dry run)."""

    def go() -> None:
        from mmfs.config import load_config
        from mmfs.pipelines.plan import make_plan

        result = make_plan(paths, load_config(config), store, rehash=rehash)
        lines = [
            f"{result.n_inputs} inputs: {len(result.new)} new, {len(result.stale)} stale, "
            f"{result.up_to_date} up to date, {len(result.new_uris)} new paths of known bytes, "
            f"{result.duplicates} duplicates, {len(result.unreadable)} unreadable"
        ]
        lines += [f"  new    {uri}" for uri in result.new]
        lines += [f"  stale  {s['uri']}  ({', '.join(s['tables']) or 'media'})" for s in result.stale]
        lines += [f"  error  {u['uri']}: {u['error']}" for u in result.unreadable]
        _emit(as_json, result.as_dict(), "\n".join(lines))

    _guard(go, as_json)


@app.command()
def demo(store: StoreOpt = DEMO_STORE, as_json: JsonOpt = False) -> None:
    """Run the built-in sample data into a store, then print a report and an example search."""
    _setup_logging(store)

    def go() -> None:
        from mmfs.config import PipelineConfig
        from mmfs.demo import sample_paths
        from mmfs.pipelines.run import run_pipeline
        from mmfs.report import hits_text, run_text, status_doc, status_text
        from mmfs.store.db import Store

        summary = run_pipeline(sample_paths(), PipelineConfig(), store)
        st = Store(store)
        hits = _search(st, text=DEMO_QUERY, image=None, k=3, where=[], column=None)
        status = status_doc(st)
        doc = {"run": summary.as_dict(), "status": status, "query": DEMO_QUERY, "hits": hits}
        text = "\n\n".join(
            [run_text(summary), status_text(status), f'search "{DEMO_QUERY}":\n' + hits_text(hits)]
        )
        _emit(as_json, doc, text)

    _guard(go, as_json)


@app.command()
def status(
    store: StoreOpt = "./mmfs-store",
    run_id: RunOpt = None,
    recall: Annotated[bool, typer.Option("--recall", help="measure each vector index's recall@10")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Tables, rows, versions, fragments, indexes and quarantine of a store."""

    def go() -> None:
        from mmfs.report import status_doc, status_text

        doc = status_doc(_open(store, run_id), recall_queries=10 if recall else 0)
        _emit(as_json, doc, status_text(doc))

    _guard(go, as_json)


@app.command()
def search(
    text: Annotated[str | None, typer.Option("--text", help="find segments matching this text")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="find segments like this image")] = None,
    audio: Annotated[Path | None, typer.Option("--audio", help="find segments that sound like this")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="number of hits")] = 10,
    where: Annotated[list[str] | None, typer.Option("--where", help="column=value filter")] = None,
    modality: Annotated[str | None, typer.Option("--modality", help="vector column to search")] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="vector | text (full-text) | hybrid (both, fused by rank)")
    ] = "vector",
    thumbnails: Annotated[
        Path | None,
        typer.Option("--thumbnails", help="write each hit's frame thumbnail (JPEG) into this folder"),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="text queries: weight of each modality, e.g. visual=1,text=0.5,words=0.25 "
            "(defaults visual=1,text=0.5,words=0.25; docs/search.md)",
        ),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="say why each hit matched: scores per modality, labels, words")
    ] = False,
    store: StoreOpt = "./mmfs-store",
    run_id: RunOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Nearest segments to a text, an image or a sound (every hit's reasons in `why`)."""

    def go() -> None:
        from mmfs.report import hits_text
        from mmfs.store.filters import parse_where
        from mmfs.store.search_explain import explain_lines

        opened = _open(store, run_id)
        hits = _search(
            opened,
            text=text,
            image=image,
            audio=audio,
            k=k,
            where=parse_where(where or []),
            column=modality,
            mode=mode,
            weights=weights,
        )
        if thumbnails is not None:
            from mmfs.store.hit_frames import save_hit_thumbnails

            save_hit_thumbnails(opened, hits, thumbnails)
        lines = hits_text(hits).splitlines()
        if explain and hits:
            lines = [line for i, hit in enumerate(hits) for line in (lines[i], *explain_lines(hit))]
        _emit(as_json, {"hits": hits}, "\n".join(lines))

    _guard(go, as_json)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SELECT … over the tables (DuckDB)")],
    store: StoreOpt = "./mmfs-store",
    run_id: RunOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run SQL (DuckDB) over the store's tables."""

    def go() -> None:
        import polars as pl

        from mmfs.store.sql import run_sql

        result = run_sql(_open(store, run_id), query)
        if as_json:
            _emit(True, {"rows": result.to_pylist()}, "")
            return
        with pl.Config(tbl_rows=50, fmt_str_lengths=60):
            typer.echo(str(pl.from_arrow(result)))

    _guard(go, as_json)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="the run (see `mmfs versions`)")],
    store: StoreOpt = "./mmfs-store",
    html: Annotated[
        Path | None, typer.Option("--html", help="also write a self-contained HTML report with plots")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """What one run did: outcomes, error codes, rows, stage times and the slowest items."""

    def go() -> None:
        from mmfs.report import run_report, run_report_text

        doc = run_report(_open(store, run_id), run_id)  # the tables as this run left them
        if html is not None:
            from mmfs.web.static_report import write

            doc["html"] = str(write(store, run_id, html))
        text = run_report_text(doc) + (f"\nHTML report: {doc['html']}" if html is not None else "")
        _emit(as_json, doc, text)

    _guard(go, as_json)


@app.command()
def serve(
    store: StoreOpt = "./mmfs-store",
    host: Annotated[
        str, typer.Option("--host", help="interface to listen on (loopback by default)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port")] = 8765,
    allow_root: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-root",
            metavar="DIR",
            help="a folder whose files POST /api/features may read by path (repeat)",
        ),
    ] = None,
) -> None:
    """The analyst page: search, media timelines, runs and quarantine in a local web app (read-only)."""

    def go() -> None:
        from mmfs.web.app import LOOPBACK
        from mmfs.web.app import serve as run_server

        _open(store)  # one readable line when there is no store
        if host not in (LOOPBACK, "localhost", "::1"):
            log.warning(
                "listening on %s: the page has no login, anyone who can reach it sees the store", host
            )
        from mmfs.ops.metrics import store_registry

        typer.echo(f"mmfs: serving {store} on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
        run_server(store, host=host, port=port, metrics=store_registry(store), allowed_roots=allow_root or [])

    _guard(go)


@app.command()
def versions(store: StoreOpt = "./mmfs-store", as_json: JsonOpt = False) -> None:
    """Runs in order, with the table versions each started from and produced."""

    def go() -> None:
        from mmfs.report import versions_text
        from mmfs.store.versions import history

        runs = [
            {
                "run_id": r.run_id,
                "status": r.status,
                "started_at": str(r.started_at),
                "before": r.before,
                "after": r.after,
            }
            for r in history(_open(store))
        ]
        _emit(as_json, {"runs": runs}, versions_text(runs))

    _guard(go, as_json)


@app.command()
def rollback(
    run_id: Annotated[str, typer.Argument(help="the run to undo (see `mmfs versions`)")],
    cascade: Annotated[bool, typer.Option("--cascade", help="also undo the runs after it")] = False,
    store: StoreOpt = "./mmfs-store",
    as_json: JsonOpt = False,
) -> None:
    """Restore every table to its version before RUN_ID."""

    def go() -> None:
        from mmfs.store.versions import rollback as do_rollback

        result = do_rollback(_open(store), run_id, cascade=cascade)
        text = f"rolled back {', '.join(result['rolled_back'])}; restored {sorted(result['restored'])}"
        if result["dropped"]:
            text += f"; dropped {result['dropped']} (created by the run)"
        _emit(as_json, result, text)

    _guard(go, as_json)


@app.command()
def erase(
    media_ids: Annotated[list[str], typer.Argument(help="media_id values (sha256 of the bytes)")],
    purge_history: Annotated[
        bool, typer.Option("--purge-history", help="also remove old versions that still hold them")
    ] = False,
    store: StoreOpt = "./mmfs-store",
    as_json: JsonOpt = False,
) -> None:
    """Remove media items from every table (GDPR erasure)."""

    def go() -> None:
        from mmfs.store.erase import erase as do_erase

        result = do_erase(_open(store), media_ids, purge_history=purge_history)
        rows = ", ".join(f"{t} {n}" for t, n in result["deleted"].items()) or "nothing"
        text = f"deleted rows: {rows}"
        if result["purged"]:
            text += f"; history purged ({result['versions_removed']} old versions removed, rollback reset)"
        _emit(as_json, result, text)

    _guard(go, as_json)


@app.command()
def maintain(
    retention_days: Annotated[
        float, typer.Option("--retention-days", min=0, help="keep untagged versions this recent")
    ] = 7.0,
    store: StoreOpt = "./mmfs-store",
    as_json: JsonOpt = False,
    compact: Annotated[
        str, typer.Option("--compact", help="reclaim (only when it frees space) | always | never")
    ] = "reclaim",
    keep_runs: Annotated[
        int | None,
        typer.Option("--keep-runs", min=0, help="drop the rollback tags of all but the last N runs"),
    ] = None,
    orphan_grace_hours: Annotated[
        float,
        typer.Option(
            "--orphan-grace-hours",
            min=0,
            help="delete uncommitted data files (a killed run's) older than this",
        ),
    ] = 1.0,
) -> None:
    """Remove old untagged versions of every table; compact fragments when that frees space."""

    def go() -> None:
        from mmfs.store.maintain import maintain as do_maintain

        if compact not in ("reclaim", "always", "never"):
            raise ConfigError(f"--compact takes reclaim, always or never, not {compact!r}")
        report = do_maintain(
            _open(store),
            retention_days=retention_days,
            min_fragments=1,
            compact=compact,  # type: ignore[arg-type]
            keep_runs=keep_runs,
            orphan_grace_s=orphan_grace_hours * 3600,
        )
        lines = [
            f"{name:<12} fragments {r['fragments'][0]} -> {r['fragments'][1]}, "
            f"versions {r['versions'][0]} -> {r['versions'][1]}"
            + (f", orphan files removed {r['orphans']}" if r.get("orphans") else "")
            + (
                f", key index segments {r['key_index']['segments'][0]} -> {r['key_index']['segments'][1]}"
                if r.get("key_index", {}).get("merged")
                else ""
            )
            for name, r in report.items()
        ]
        _emit(as_json, {"tables": report}, "\n".join(lines) or "nothing to do")

    _guard(go, as_json)


@app.command()
def checkout(
    run_id: Annotated[str, typer.Option("--run", help="the run whose result to view")],
    store: StoreOpt = "./mmfs-store",
    as_json: JsonOpt = False,
) -> None:
    """The table versions a run left: pin readers to them, or pass --run to status, sql and search."""

    def go() -> None:
        view = _open(store, run_id)
        doc = {"run_id": run_id, "versions": view.pinned}
        lines = [f"{t:<12}version {v}" for t, v in (view.pinned or {}).items()]
        lines.append(f"read it with: mmfs sql '…' --run {run_id}, or FeatureDataset(..., version=N)")
        _emit(as_json, doc, "\n".join(lines))

    _guard(go, as_json)


def _open(store: str, run_id: str | None = None) -> Any:
    from mmfs.store.db import Store

    if "://" not in store and not Path(store).is_dir():
        raise ConfigError(f"no store at {store}")
    opened = Store.at_run(store, run_id) if run_id else Store(store)
    if "://" in store and not opened.table_names():  # an object prefix with no tables is no store
        raise ConfigError(f"no store at {store}")
    return opened


def _search(
    st: Any,
    *,
    text: str | None,
    image: Path | None,
    k: int,
    where: list[tuple[str, str]],
    column: str | None,
    audio: Path | None = None,
    mode: str = "vector",
    weights: str | None = None,
) -> list[dict[str, Any]]:
    from mmfs.query import query_vector
    from mmfs.store.search import search_segments, search_text_segments
    from mmfs.store.search_weighted import hybrid_search, parse_weights, text_weights, weighted_search

    if not st.has("segments"):
        raise ConfigError(f"store {st.uri} has no segments yet; run `mmfs run` first")
    if mode not in ("vector", "text", "hybrid"):
        raise ConfigError(f"--mode takes vector, text or hybrid, not {mode!r}")
    if mode != "vector" and text is None:
        raise ConfigError(f"--mode {mode} needs --text")
    if mode == "text":
        return [h.as_dict() for h in search_text_segments(st, text, k=k, where=where)]  # type: ignore[arg-type]
    if weights is not None and (text is None or column is not None or mode != "vector"):
        raise ConfigError("--weights steers a --text search in the default mode, without --modality")
    given = text_weights(parse_weights(weights)) if weights is not None else None
    vector, default_column = query_vector(st, text=text, image=image, audio=audio)
    if mode == "hybrid":
        hits = hybrid_search(st, vector, text, k=k, where=where, column=column or default_column)  # type: ignore[arg-type]
    elif text is not None and column is None:  # pictures, text and words, each weighted (search_weighted)
        hits = weighted_search(st, vector, text, k=k, where=where, weights=given)
    else:
        hits = search_segments(st, vector, column=column or default_column, k=k, where=where)
    return [h.as_dict() for h in hits]


@app.command("train-audio-head")
def train_audio_head(
    labels: Annotated[Path, typer.Option("--labels", help="CSV: media_id or uri, start_s, end_s, label")],
    out: Annotated[Path, typer.Option("--out", help="where to write the head (JSON)")],
    store: StoreOpt = "./mmfs-store",
    features: Annotated[str, typer.Option("--features", help="mfcc | embedding | both")] = "mfcc",
    as_json: JsonOpt = False,
) -> None:
    """Train a sound classifier on labelled audio windows; prints its held-out accuracy."""

    def go() -> None:
        from mmfs.training.audio_head import train_head

        doc = train_head(_open(store, None), labels, out, features=features)
        text = (
            f"held-out accuracy {doc['held_out_accuracy']:.3f} on {doc['n_test']} windows "
            f"(split by {doc['split']}, {doc['n_train']} trained); labels: {', '.join(doc['labels'])}; "
            f"head written to {out}"
        )
        _emit(as_json, doc, text)

    _guard(go, as_json)


@app.command("apply-audio-head")
def apply_audio_head(
    head: Annotated[Path, typer.Option("--head", help="a head written by train-audio-head")],
    store: StoreOpt = "./mmfs-store",
    media_id: Annotated[list[str] | None, typer.Option("--media-id", help="only these items")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Label every stored audio window with a trained sound classifier."""

    def go() -> None:
        from mmfs.training.audio_head import predict_windows
        from mmfs.transforms.audio.head import SoundHead

        try:
            loaded = SoundHead.load(head)
        except (OSError, ValueError, TypeError) as err:
            raise ConfigError(f"cannot read head {head}: {err}") from None
        rows = predict_windows(_open(store, None), loaded, media_id)
        lines = [
            f"{r['media_id'][:12]} {r['start_s']:8.2f} {r['end_s']:8.2f}  "
            f"{r['label']} ({r['probability']:.2f})"
            for r in rows
        ]
        _emit(as_json, {"windows": rows}, "\n".join(lines))

    _guard(go, as_json)


@app.command("train-fusion")
def train_fusion_cmd(
    store: StoreOpt = "./mmfs-store",
    out: Annotated[
        str | None, typer.Option("--out", help="default: STORE/fusion/projection.safetensors")
    ] = None,
    dim: Annotated[int, typer.Option("--dim", min=2, help="width of the projected joint vector")] = 256,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Adam steps")] = 200,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Train the learned fusion projection on the store's segments (use: encoders.fusion=learned)."""

    def go() -> None:
        from dataclasses import asdict

        from mmfs.training.fusion import train_fusion

        st = _open(store)
        path = Path(out) if out else Path(store) / "fusion" / "projection.safetensors"
        result = train_fusion(st, path, dim=dim, steps=steps, seed=seed)
        text = (
            f"trained on {result.n_segments} segments ({result.in_dim} -> {result.out_dim}), loss "
            f"{result.loss_first:.3f} -> {result.loss_last:.3f}; wrote {result.path}\n"
            f"use it with:  encoders: {{fusion: learned, fusion_weights: {result.path}}}"
        )
        _emit(as_json, asdict(result), text)

    _guard(go, as_json)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
