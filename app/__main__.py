import sys

from app.cli import main

if __name__ == "__main__":  # not when a spawned process (a Dask LocalCluster worker) re-imports it
    sys.exit(main())
