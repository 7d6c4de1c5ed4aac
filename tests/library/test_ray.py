"""Past one machine, on a real Ray cluster of two nodes on this machine (CPU only).

2,000 real handwritten digits (scikit-learn) go through a torchvision ResNet built from
config (``weights=None``, 32x32 input) and a GPT-2 language head built from config (one
layer, a word-level tokenizer made in memory, its answer restricted to the digit words) in
Ray Data actors, both instrumented there; each actor writes its own Parquet shards; the
evaluators run per partition in Ray tasks.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("transformers")

import vlmscope  # noqa: E402
from vlmscope.cli import main as cli  # noqa: E402
from vlmscope.collectors.shards import ShardRoot, open_root  # noqa: E402
from vlmscope.distributed import evaluate_on_ray, run_on_ray  # noqa: E402
from vlmscope.evaluators import (  # noqa: E402
    ClassificationReport,
    FailureAttribution,
    GroundTruthMatch,
    run_evaluations,
)

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
HEAD = "digit-word-head"
ROWS = 2000


def digits_dataset(name: str, rows: int = ROWS) -> vlmscope.Dataset:
    """The 1,797 scikit-learn digits, then mirrored copies of the first ones: ``rows`` real
    8x8 scans as uint8 arrays, expected = the digit's word."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    scans = (digits.images / 16.0 * 255).round().astype(np.uint8)
    records = []
    for i in range(rows):
        index = i % len(scans)
        scan = scans[index] if i < len(scans) else np.ascontiguousarray(scans[index][:, ::-1])
        records.append({"id": f"d{i}", "image": scan, "expected": WORDS[digits.target[index]],
                        "instruction": "which digit is this?"})
    return vlmscope.Dataset.from_records(name, records)


def _take(marker: str | None) -> bool:
    """Whether this process claimed ``marker`` (only one process ever does)."""
    if marker is None:
        return False
    try:
        os.rename(marker, f"{marker}.taken")
    except OSError:
        return False
    return True


class DigitWordsOnly:
    """A logits processor: the head answers with one of the digit words."""

    def __init__(self, allowed: list[int]) -> None:
        self.allowed = allowed

    def __call__(self, input_ids, scores):
        masked = torch.full_like(scores, float("-inf"))
        masked[:, self.allowed] = scores[:, self.allowed]
        return masked


def build_head(seed: int):
    """A GPT-2 from config (random weights, seeded) with a word-level tokenizer built in
    memory, instrumented: ``head(labels)`` answers, for each label the encoder read."""
    import tokenizers
    import transformers

    words = ["[PAD]", "[UNK]", *WORDS, "which", "digit", "is", "this", "?", "encoder", "sees"]
    vocab = {w: i for i, w in enumerate(words)}
    word_level = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    word_level.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=word_level, pad_token="[PAD]", unk_token="[UNK]")
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(vocab), n_positions=16, n_embd=32, n_layer=1, n_head=2,
        bos_token_id=0, eos_token_id=0, pad_token_id=0)).eval()
    vlmscope.instrument_generator(model, tokenizer, name=HEAD)
    only_digits = transformers.LogitsProcessorList(
        [DigitWordsOnly([vocab[w] for w in WORDS])])

    def head(labels: list[str]) -> list[str]:
        batch = tokenizer([f"which digit is this ? encoder sees {w}" for w in labels],
                          return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=1, do_sample=False, pad_token_id=0,
                                 logits_processor=only_digits)
        return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                      skip_special_tokens=True)

    return head


def build_pipeline(seed: int = 0, kill_marker: str | None = None, kill_at_call: int = 3):
    """The pipeline: a ResNet from config with seed ``seed`` (instrumented, top-3), then the
    GPT-2 head given the encoder's top-1 label. With ``kill_marker``, the process that claims
    the marker kills itself (SIGKILL) in the middle of its ``kill_at_call``-th batch."""
    from torchvision.models.resnet import BasicBlock, ResNet

    from vlmscope.dataset import decode_image

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10).eval()
    vlmscope.instrument_encoder(model, labels=WORDS, top_k=3)
    head = build_head(seed)
    calls = [0]

    def pipeline(rows):
        calls[0] += 1
        # Dataset.run hands over the array as given, run_on_ray an RGB PIL image (it ships
        # images as PNG bytes): one canonical RGB form for both.
        pixels = torch.stack([
            torch.from_numpy(np.asarray(decode_image(row.image),
                                        dtype=np.float32) / 255).permute(2, 0, 1)
            for row in rows])
        pixels = torch.nn.functional.interpolate(pixels, size=32, mode="bilinear")
        with torch.no_grad():
            top1 = model(pixels).argmax(1).tolist()
        if calls[0] == kill_at_call and _take(kill_marker):
            os.kill(os.getpid(), signal.SIGKILL)  # a worker dies mid-batch
        return head([WORDS[i] for i in top1])

    return pipeline


def factory(**options):
    """A factory as run_on_ray takes it: called once in each actor."""
    return functools.partial(build_pipeline, **options)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Ray cluster of two nodes with one CPU each (a head and a worker node)."""
    from ray.cluster_utils import Cluster

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes.add_node(num_cpus=1)
    ray.init(address=nodes.address, log_to_driver=False)
    try:
        yield nodes.address
    finally:
        ray.shutdown()
        nodes.shutdown()


def evaluators() -> list:
    return [GroundTruthMatch(), ClassificationReport(slice_by=["cohort"]),
            FailureAttribution(classes=WORDS)]


def row_counts(root: Path, run: str) -> tuple[int, int]:
    con = open_root(root)
    try:
        return con.execute("SELECT count(*), count(DISTINCT row_id) FROM pipeline_rows "
                           "WHERE run = ?", [run]).fetchall()[0]
    finally:
        con.close()


def test_two_thousand_digits_traced_across_two_actors_each_row_once_scored_as_one_machine(
        cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    dataset = digits_dataset("digits")
    result = run_on_ray(dataset, factory(), root=root, name="ray-run", batch_size=250,
                        num_actors=2, evaluators=evaluators())
    assert (result.rows, result.failed, result.warnings) == (ROWS, 0, [])
    assert row_counts(root, "ray-run") == (ROWS, ROWS)
    manifests = ShardRoot(str(root)).manifests().values()
    writers = {(m["node"], m["actor"]) for m in manifests if m["kind"] == "rows"}
    assert len({node for node, _ in writers}) == 2 and len(writers) >= 2

    # The same pipeline on one machine, Dataset.run into one DuckDB file.
    vlmscope.configure(db=tmp_path / "one.duckdb", service_name="tests")
    try:
        single = dataset.run(build_pipeline(), name="one-machine", batch_size=250,
                             progress=False)
    finally:
        vlmscope.shutdown()
    assert (single.summary["evaluations"]["ground_truth_match"]
            == result.summary["evaluations"]["ground_truth_match"])
    assert result.summary["evaluations"]["ground_truth_match"]["judged"] == ROWS

    # Evaluators in Ray tasks over the root (run_on_ray scored the run with
    # evaluate_on_ray) = DuckDB over the same root in one process, to the last digit.
    con = open_root(root)
    try:
        here = run_evaluations(con, evaluators(), run="ray-run").summaries
        ((written,),) = con.execute("SELECT count(*) FROM evaluations WHERE run_id = ?",
                                    [result.eval_run_id]).fetchall()
    finally:
        con.close()
    assert result.summary["evaluations"] == here
    assert result.shards == ROWS // 250
    there = evaluate_on_ray(root, evaluators(), run="ray-run", num_workers=2,
                            rows_per_task=500)
    assert there.summaries == here
    assert (there.partitions, there.rows) == (ROWS // 500, ROWS)
    assert here["failure_attribution"]["failing"] > 0
    assert written == here["ground_truth_match"]["judged"] + here["failure_attribution"][
        "judged"]

    # The command line: --engine ray prints what the one-process engine prints.
    printed = []
    for engine in ("duckdb", "ray"):
        assert cli(["eval", "--parquet", str(root), "--engine", engine, "--run", "ray-run",
                    "--by", "cohort", "--format", "json"]) == 0
        printed.append(json.loads(capsys.readouterr().out))
    for summary in printed:
        summary.pop("run_id")
        summary["answers"].pop("run_id", None)
    assert printed[0] == printed[1]


@pytest.mark.slow
def test_diff_of_two_ray_runs_equals_the_diff_of_the_same_runs_in_one_duckdb_file(
        cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    import duckdb

    from vlmscope.collectors.schema import migrate

    dataset = digits_dataset("digits-small", 300)
    for name, seed in (("base", 0), ("candidate", 1)):
        run_on_ray(dataset, factory(seed=seed), root=tmp_path / name, name=name,
                   batch_size=100, num_actors=2, evaluators=[GroundTruthMatch()])
    root = tmp_path / "both"  # one root holding both runs: shards have distinct names
    shutil.copytree(tmp_path / "base", root)
    shutil.copytree(tmp_path / "candidate", root, dirs_exist_ok=True)
    store = tmp_path / "one.duckdb"
    source = open_root(root)
    target = duckdb.connect(str(store))
    migrate(target)
    for table in ("spans", "row_records", "encoder_records", "llm_records", "embeddings",
                  "evaluations", "eval_runs", "datasets", "dataset_rows", "dataset_runs"):
        rows = source.sql(f"SELECT * FROM {table}").to_arrow_table()
        target.register("copied", rows)
        target.execute(f"INSERT INTO {table} BY NAME SELECT * FROM copied")
        target.unregister("copied")
    target.close()
    source.close()
    reports = []
    for where in (["--parquet", str(root)], ["--db", str(store)],
                  ["--parquet", str(tmp_path / "base"), "--parquet",
                   str(tmp_path / "candidate")]):
        code = cli(["diff", *where, "--base", "base", "--candidate", "candidate",
                    "--format", "json"])
        reports.append((code, json.loads(capsys.readouterr().out)))
    assert reports[0] == reports[1] == reports[2]
    assert reports[0][1]["rows"]["compared_rows"] == 300


def test_adherence_multilabel_and_custom_in_ray_tasks_equal_the_one_machine_run(
        cluster: str, tmp_path: Path) -> None:
    from tests import hallucination_corpus, merge_corpus

    for module in (merge_corpus, hallucination_corpus):
        ray.cloudpickle.register_pickle_by_value(module)
    folder = merge_corpus.traced_export(tmp_path, merge_corpus.random_rows(3, 240), services=3)
    con = open_root(folder)
    try:
        here = run_evaluations(con, merge_corpus.merged_evaluators(0)).summaries
    finally:
        con.close()
    there = evaluate_on_ray(folder, merge_corpus.merged_evaluators(0), num_workers=2)
    assert there.partitions == 3
    assert there.summaries == here
    assert here["instruction_adherence"]["judge"]["rows"] > 50
    assert here["multilabel_report"]["mean_average_precision"] > 0


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_every_row_there_exactly_once(
        cluster: str, tmp_path: Path) -> None:
    marker = tmp_path / "kill-once"
    marker.touch()
    root = tmp_path / "root"
    result = run_on_ray(digits_dataset("digits-kill", 600), factory(
        kill_marker=str(marker), kill_at_call=3), root=root, name="killed", batch_size=50,
        num_actors=2, evaluators=[GroundTruthMatch()])
    assert not marker.exists() and Path(f"{marker}.taken").exists()  # a worker did die
    assert (result.rows, result.failed, result.warnings) == (600, 0, [])
    assert row_counts(root, "killed") == (600, 600)
    assert result.summary["evaluations"]["ground_truth_match"]["judged"] == 600


def test_evaluating_a_root_without_ray_imports_no_ray(tmp_path: Path) -> None:
    import subprocess

    script = f"""
import sys
import vlmscope, vlmscope.distributed
from vlmscope.cli import main
vlmscope.configure(db={str(tmp_path / 's.duckdb')!r}, service_name="tests")
with vlmscope.trace_row("r1", expected="cat"):
    with vlmscope.llm_span(model="m") as span:
        span.set_output("cat")
vlmscope.shutdown()
from vlmscope.collectors.parquet import export_parquet
import duckdb
con = duckdb.connect({str(tmp_path / 's.duckdb')!r})
export_parquet(con, {str(tmp_path / 'export')!r})
con.close()
code = main(["eval", "--parquet", {str(tmp_path / 'export')!r}, "--evaluators",
             "ground_truth_match", "--format", "json"])
assert code == 0, code
assert "ray" not in sys.modules, "ray was imported"
print("no ray")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no ray" in done.stdout


def test_ray_engine_without_a_parquet_root_is_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    with contextlib.suppress(SystemExit):
        code = cli(["eval", "--engine", "ray", "--db", "nowhere.duckdb"])
        assert code == 2
    assert "--parquet" in capsys.readouterr().err


def test_a_ray_dataset_of_rows_needs_its_name_and_the_id_and_image_columns(
        cluster: str, tmp_path: Path) -> None:
    rows = ray.data.from_items([{"id": "r1", "image": b"", "expected": "one"}])
    with pytest.raises(ValueError, match="dataset_name"):
        run_on_ray(rows, factory(), root=tmp_path, name="r")
    with pytest.raises(ValueError, match="lacks the column"):
        run_on_ray(ray.data.from_items([{"id": "r1"}]), factory(), root=tmp_path, name="r",
                   dataset_name="d")
    with pytest.raises(TypeError, match="pipeline_factory"):
        run_on_ray(rows, object(), root=tmp_path, name="r", dataset_name="d")
