"""tests/python's one piece of import set-up, whatever pytest's import mode: the shared support
modules beside the tests (test_emulator_support, test_infra_support) and the project's Python tools
in infra/tools (cfn, the CloudFormation evaluator; lambda_watch, the `cargo lambda watch` harness;
toolenv), which scripts/demo.py imports too, importable by name."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE.parents[1] / "infra" / "tools", HERE):
    sys.path.insert(0, str(path))
