"""One description of a dataset makes every pool: from the TUI's settings, the download command,
a cluster's workers and a job resumed from the session store."""

from __future__ import annotations

import pickle

import pytest

from app.core.datasets import DatasetSpec
from pools import ArchiveTemplateDataPool, CombinedLayoutDataPool, IncrementIDDataPool

SPECS = [
    DatasetSpec("o/inc", base_level=[3, 4], base_dir="images", endpoint="http://127.0.0.1:1", token="hf_secret"),
    DatasetSpec("o/xyz", idx_repo="o/xyz-index", revision="v2", idx_revision="v1",
                archive_templates=("original/data-0{residue:03d}.tar",), token="hf_secret"),
    DatasetSpec("o/combined", archive_templates=("original/data-0{residue:03d}.tar",),
                extra_layers=((10, "updates/2024/dataset-{residue}.tar"),)),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.repo)
def test_a_pool_made_from_a_spec_reads_back_as_the_same_spec_and_record(spec):
    pool = spec.make_pool()
    kind = {"o/inc": IncrementIDDataPool, "o/xyz": ArchiveTemplateDataPool, "o/combined": CombinedLayoutDataPool}
    assert type(pool) is kind[spec.repo]
    back = DatasetSpec.of_pool(pool)
    assert back.make_pool().archives_for(7654321) == pool.archives_for(7654321)
    record = back.record()
    assert "hf_secret" not in repr(record) and "hf_secret" not in repr(spec)
    again = DatasetSpec.from_record(record, token="hf_other")
    assert again.record() == record and again.token == "hf_other"
    assert again.make_pool().archives_for(123) == pool.archives_for(123)


def test_a_demo_job_is_recorded_without_its_port_and_resumed_on_this_runs_demo_hub():
    spec = DatasetSpec("demo/booru-mini", base_level=2, endpoint="http://127.0.0.1:4242")
    record = spec.record(demo_endpoint="http://127.0.0.1:4242")
    assert record["demo"] is True and record["endpoint"] is None
    resumed = DatasetSpec.from_record(record, demo_endpoint="http://127.0.0.1:5151", token="hf_mine")
    assert resumed.endpoint == "http://127.0.0.1:5151" and resumed.token is None  # no token to the demo
    other = DatasetSpec.from_record(DatasetSpec("o/r", endpoint="https://mirror.example").record(),
                                    demo_endpoint="http://127.0.0.1:5151")
    assert other.endpoint == "https://mirror.example"


def test_a_spec_is_what_a_cluster_worker_calls_for_its_pool():
    spec = pickle.loads(pickle.dumps(SPECS[0]))
    pool = spec()
    assert isinstance(pool, IncrementIDDataPool) and pool.data_repo_id == "o/inc"
    assert spec.repo == "o/inc"  # the cluster job's label


def test_a_dataset_class_is_made_recorded_and_read_back_by_name():
    spec = DatasetSpec("deepghs/gelbooru_full", dataset_class="GelbooruDataPool", revision="v3",
                       endpoint="http://127.0.0.1:9")
    pool = spec.make_pool()
    assert type(pool).__name__ == "GelbooruDataPool" and pool.base_level == [3, 4] and pool.idx_revision == "v3"
    assert DatasetSpec.of_pool(pool).dataset_class == "GelbooruDataPool"
    again = DatasetSpec.from_record(spec.record())
    assert type(again.make_pool()).__name__ == "GelbooruDataPool"
    newest = DatasetSpec.of_pool(DatasetSpec("x/y", dataset_class="DanbooruNewestDataPool").make_pool())
    assert newest.dataset_class == "DanbooruNewestDataPool"
    with pytest.raises(ValueError, match="no dataset class"):
        DatasetSpec("x/y", dataset_class="Nope").make_pool()
