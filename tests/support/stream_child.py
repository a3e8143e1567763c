"""A training loop in its own process, for the resume tests: reads a TorchDataset through
torchdata's StatefulDataLoader (2 workers), stops after N batches or resumes from a saved state.

    python -m tests.support.stream_child ENDPOINT REPO LEVEL IDS STATE_FILE OUT_FILE [STOP_AFTER]

Writes the ids it received (JSON) to OUT_FILE; with STOP_AFTER, the loader's state after that
many batches to STATE_FILE; without, it loads STATE_FILE first (when present) and reads to the end.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    endpoint, repo, level, ids, state_file, out_file = argv[:6]
    stop_after = int(argv[6]) if len(argv) > 6 else None
    from torchdata.stateful_dataloader import StatefulDataLoader

    from pools import IncrementIDDataPool
    from pools.stream import TorchDataset

    pool = IncrementIDDataPool(repo, base_level=int(level), endpoint=endpoint)
    dataset = TorchDataset(pool, ids, shuffle=True, seed=7, workers=3, buffer=16)
    loader = StatefulDataLoader(dataset, batch_size=5, num_workers=2, collate_fn=lambda b: [x["id"] for x in b])
    if stop_after is None and os.path.exists(state_file):
        import torch

        loader.load_state_dict(torch.load(state_file, weights_only=False))
    got: list[int] = []
    for n, batch in enumerate(loader, 1):
        got.extend(batch)
        if stop_after is not None and n == stop_after:
            import torch

            torch.save(loader.state_dict(), state_file)
            break
    with open(out_file, "w") as f:
        json.dump(got, f)
    os._exit(0)  # the workers of a loop left mid-epoch are not waited for


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
