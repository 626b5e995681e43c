"""Write `params.yaml` from the typed config's defaults: `python -m tasks.write_params [PATH]`."""

from __future__ import annotations

import sys
from pathlib import Path

from tasks.atomic import write_text
from tasks.config import AdaptflowConfig, dump_config

HEADER = ("# adaptflow parameters: the serialised form of tasks.config.AdaptflowConfig (DVC tracks it).\n"
          "# Regenerate with `python -m tasks.write_params`; override any key: adaptflow run --set train.epochs=1\n")


def params_text(config: AdaptflowConfig | None = None) -> str:
    return HEADER + dump_config(config or AdaptflowConfig())


if __name__ == "__main__":
    print(write_text(Path(sys.argv[1] if len(sys.argv) > 1 else "params.yaml"), params_text()))
