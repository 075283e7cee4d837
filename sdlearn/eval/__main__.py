"""python -m sdlearn.eval: see `sdlearn.eval.report`."""
import os

# Evaluation never downloads: set before diffusers is imported, as huggingface_hub reads it once on import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .report import main  # noqa: E402

if __name__ == "__main__":
    main()
