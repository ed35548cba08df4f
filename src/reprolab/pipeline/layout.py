"""Where a recipe's stages keep their outputs: the one place that knows the folder layout.

```
runs/<recipe>/<profile>/
    specs/<stage>.yaml            each stage's resolved configuration (`reprolab stages resolve`):
                                  what DVC hashes to decide whether the stage changed
    stages/<stage>/               the stage's output (one DVC output per stage)
        stage.json                written last: the stage is complete iff it exists (run id, spec
                                  hash, outputs, metrics, the chain of stages it read)
        run/                      task stage: its run directory (config.yaml, run.json,
                                  metrics.jsonl, history.json, checkpoints/final.pt)
        result.json               task stage but the last: its RunResult (the last stage's goes to
                                  results/<recipe>/<run-id>.json: it is the recipe's result)
        split/<split>.parquet     inference stage: the derived split (reprolab.data.derived)
        split/<split>.json
metrics/<profile>/<recipe>/<stage>.json   flat metrics of each stage (`dvc metrics show`)
pipelines/<recipe>/<profile>/dvc.yaml     the chain as DVC stages (`reprolab stages dvc`)
```
Paths stored in specs and records are relative to the checkout (portable, no machine paths).
There is one chain per recipe and profile: running it with another --seed replaces the stages
(each seed's final RunResult stays in results/<recipe>/).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reprolab import paths


@dataclass(frozen=True)
class StageLayout:
    recipe: str
    profile: str
    root: Path | None = None   # the checkout; None: paths.project_root()

    @property
    def checkout(self) -> Path:
        return Path(self.root) if self.root is not None else paths.project_root()

    @property
    def base(self) -> Path:
        return paths.runs_dir(self.checkout) / self.recipe / self.profile

    def spec(self, stage: str) -> Path:
        return self.base / "specs" / f"{stage}.yaml"

    def stage_dir(self, stage: str) -> Path:
        return self.base / "stages" / stage

    def record(self, stage: str) -> Path:
        return self.stage_dir(stage) / "stage.json"

    def run_dir(self, stage: str) -> Path:
        return self.stage_dir(stage) / "run"

    def checkpoint(self, stage: str) -> Path:
        return self.run_dir(stage) / "checkpoints" / "final.pt"

    def result(self, stage: str) -> Path:
        return self.stage_dir(stage) / "result.json"

    def split_dir(self, stage: str) -> Path:
        return self.stage_dir(stage) / "split"

    def split_ref(self, stage: str, split: str) -> str:
        """How a config names a derived split (reprolab.data.reader.open_split reads it)."""
        return self.relative(self.split_dir(stage) / split)

    def metrics(self, stage: str) -> Path:
        return self.checkout / "metrics" / self.profile / self.recipe / f"{stage}.json"

    @property
    def dvc_file(self) -> Path:
        return self.checkout / "pipelines" / self.recipe / self.profile / "dvc.yaml"

    def relative(self, path: Path) -> str:
        return Path(path).relative_to(self.checkout).as_posix()
