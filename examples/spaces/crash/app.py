"""An app that fails at start, as a Space whose model file is missing would."""

import os


def load_model() -> None:
    path = os.environ.get("MODEL_PATH", "model.bin")
    raise RuntimeError(f"crash-example: cannot load the model from {path!r}")


print("crash-example: starting", flush=True)
load_model()
