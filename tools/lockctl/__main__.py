import sys

from tools.lockctl.main import main

sys.exit(main())
