import sys

from freezer_ui.agent.cli import main

sys.exit(main())
