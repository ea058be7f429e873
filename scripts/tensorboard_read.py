"""What TensorBoard reads from a run's event files, as JSON (its own reader, not ours):
    python3 scripts/tensorboard_read.py RUN_DIR/tensorboard
prints {"scalars": {tag: [[step, value], ...]}, "texts": {tag: [[step, text], ...]}}.
Needs `pip install tensorboard`; tests/tensorboard.rs runs it on the files encoderlab writes.
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util


def read(logdir):
    # size_guidance 0: keep every event (the default samples long runs down)
    acc = EventAccumulator(logdir, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags.get("scalars", [])}
    texts = {}
    for t in tags.get("tensors", []):
        texts[t] = []
        for e in acc.Tensors(t):
            value = tensor_util.make_ndarray(e.tensor_proto)
            item = value.item() if value.shape == () else value.flatten()[0]
            texts[t].append([e.step, item.decode() if isinstance(item, bytes) else str(item)])
    return {"scalars": scalars, "texts": texts}


if __name__ == "__main__":
    print(json.dumps(read(sys.argv[1])))
