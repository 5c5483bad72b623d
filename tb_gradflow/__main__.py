"""`python -m tb_gradflow`: the same as the `tb-gradflow` command."""
import sys

from tb_gradflow.cli import main

sys.exit(main())
