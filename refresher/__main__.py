"""`python -m refresher`: the command line (refresher/ops/cli/)."""

from refresher.ops.cli import main

if __name__ == "__main__":  # the demo's spawned readers import this module again
    main()
