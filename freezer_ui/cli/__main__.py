import sys

from freezer_ui.cli.main import main

sys.exit(main())
