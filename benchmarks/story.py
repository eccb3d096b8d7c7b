"""The default comparison end to end: text recall at distance 20, FFNN w5, FFNN reaching the cue,
RNN and LSTM, one seed. Target: 30 s wall on a 2-core CPU."""
import time

from _common import emit, parser

from lib.experiments import compare  # noqa: E402
from lib.models import ModelConfig  # noqa: E402
from lib.runtime import environment  # noqa: E402
from lib.tasks.text import TextRecallConfig, cue_lag  # noqa: E402


def main() -> None:
    args = parser(__doc__).parse_args()
    start = time.perf_counter()
    task = TextRecallConfig(distance=20)
    models = [ModelConfig(kind="ffnn", window=5), ModelConfig(kind="ffnn", window=cue_lag(20)),
              ModelConfig(kind="rnn"), ModelConfig(kind="lstm")]
    summary = compare(task, models).summary()
    wall = time.perf_counter() - start
    emit({"benchmark": "story", "target_s": 30, "wall_s": wall,
          "models": summary[["label", "metric", "epochs", "total_seconds", "n_params"]].to_dict("records"),
          "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
