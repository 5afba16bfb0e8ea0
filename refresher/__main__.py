"""`python -m refresher`: the command line (refresher/cli/)."""

from refresher.cli import main

if __name__ == "__main__":  # the demo's spawned readers import this module again
    main()
