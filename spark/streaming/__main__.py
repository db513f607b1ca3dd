import sys

from spark.streaming.cli import main

sys.exit(main())
