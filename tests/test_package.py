"""The package's top level: light to import, submodules reachable as attributes."""

import subprocess
import sys


def test_submodules_load_on_first_attribute_access():
    code = (
        "import sys, meshfield\n"
        "assert 'meshfield.theory' not in sys.modules and 'meshfield.analysis' not in sys.modules\n"
        "assert callable(meshfield.theory.stationary_rate) and callable(meshfield.analysis.psd)\n"
        "assert callable(meshfield.io.open_result)\n"
        "try:\n"
        "    meshfield.nosuch\n"
        "except AttributeError as error:\n"
        "    assert \"no attribute 'nosuch'\" in str(error)\n"
        "else:\n"
        "    raise SystemExit('meshfield.nosuch did not raise')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
