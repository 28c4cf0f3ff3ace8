import json

from hermes_bench.runners.understanding import _truncate
from hermes_bench.storage import SampleCache, atomic_write_json, digest


def test_cache_survives_a_torn_last_line(tmp_path):
    cache = SampleCache(tmp_path, "understanding")
    cache.put_many({"a": "yes", "b": "no"})
    with cache.path.open("a") as fh:
        fh.write('{"key": "c", "val')  # killed mid-write
    reopened = SampleCache(tmp_path, "understanding")
    assert reopened.values == {"a": "yes", "b": "no"}
    reopened.put_many({"c": "maybe"})
    assert SampleCache(tmp_path, "understanding").values == {"a": "yes", "b": "no", "c": "maybe"}


def test_cache_reads_every_process_file(tmp_path):
    SampleCache(tmp_path, "understanding", rank=0).put_many({"a": 1})
    SampleCache(tmp_path, "understanding", rank=1).put_many({"b": 2})
    assert SampleCache(tmp_path, "understanding").values == {"a": 1, "b": 2}


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"x": 1})
    atomic_write_json(tmp_path / "r.json", {"x": 2})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_digest_depends_on_every_input():
    from PIL import Image

    red, blue = Image.new("RGB", (4, 4), "red"), Image.new("RGB", (4, 4), "blue")
    base = digest("m", "ctx", {"until": ["\n"]}, [red])
    assert base == digest("m", "ctx", {"until": ["\n"]}, [red.copy()])
    assert len({base, digest("m", "ctx", {"until": ["\n"]}, [blue]), digest("m", "ctx2", {"until": ["\n"]}, [red]),
                digest("m2", "ctx", {"until": ["\n"]}, [red])}) == 4


def test_stop_sequences_cut_the_answer():
    assert _truncate("yes\nno", ["\n"]) == "yes"
    assert _truncate("yes. no", ".") == "yes"
    assert _truncate("yes", []) == "yes"
