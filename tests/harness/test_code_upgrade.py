"""The code-upgrade run imports the program's package from another revision, then puts the process back."""

import subprocess
import sys

import aiplatform
from tools.e2e.code_upgrade import export_revision, package_from


def test_the_package_comes_from_the_other_checkout_inside_and_is_restored_after(tmp_path):
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "__init__.py").write_text('__version__ = "0.0.1-earlier"\n')
    (tmp_path / "components" / "only_there.py").write_text("VALUE = 42\n")
    before = sys.modules["aiplatform"]
    with package_from(tmp_path):
        import aiplatform as earlier
        from aiplatform.only_there import VALUE

        assert earlier.__version__ == "0.0.1-earlier" and VALUE == 42
    assert sys.modules["aiplatform"] is before is aiplatform
    assert "aiplatform.only_there" not in sys.modules


def test_a_revision_is_exported_with_its_committed_files(tmp_path):
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert export_revision("HEAD", tmp_path / "tree") == head
    assert (tmp_path / "tree" / "__main__.py").is_file()
    assert (tmp_path / "tree" / "components" / "platform.py").is_file()
