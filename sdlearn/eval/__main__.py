"""python -m sdlearn.eval: see `sdlearn.eval.report`."""
from .report import main

if __name__ == "__main__":
    main()
