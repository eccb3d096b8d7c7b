"""The default comparison end to end: text recall at distance 20, FFNN w5, FFNN reaching the cue,
RNN and LSTM, one seed, no run store, every core. Target: 6 s wall on a 2-core CPU (moonshot 3 s)."""
import time

from _common import emit, parser
from lib.experiments import compare
from lib.reference import STORY_MODELS, STORY_TASK
from lib.runtime import environment


def main() -> None:
    args = parser(__doc__).parse_args()
    start = time.perf_counter()
    summary = compare(STORY_TASK, STORY_MODELS).summary()
    wall = time.perf_counter() - start
    emit({"benchmark": "story", "target_s": 6, "wall_s": wall,
          "models": summary[["label", "metric", "epochs", "total_seconds", "n_params"]].to_dict("records"),
          "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
