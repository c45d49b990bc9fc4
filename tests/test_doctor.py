import shutil
import subprocess
import sys

import pytest

from llmcourse import doctor


def test_doctor_passes_on_this_environment():
    results = doctor.run_checks()
    names = [c.name for c in results]
    for expected in ["python", "pytorch", "device", "threads", "jupyterlab", "ipywidgets", "widgets extension"]:
        assert expected in names
    assert any(n.startswith("data ") for n in names)
    failed = [str(c) for c in results if not c.ok]
    assert not failed, failed


def test_doctor_command_prints_one_line_per_check_and_exits_zero():
    proc = subprocess.run([sys.executable, "-m", "llmcourse", "doctor"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.startswith(("OK", "FAIL"))]
    assert len(lines) == len(doctor.run_checks())
    assert "ready for the course" in proc.stdout


def test_corrupted_and_missing_data_files_fail_with_a_fix(tmp_path, monkeypatch, capsys):
    from llmcourse import datasets

    shutil.copytree(datasets.data_dir(), tmp_path / "data")
    monkeypatch.setenv("LLMCOURSE_DATA", str(tmp_path / "data"))
    files = sorted(datasets.read_checksums())
    victim = tmp_path / "data" / files[0]
    victim.write_bytes(victim.read_bytes() + b"tampered")
    if len(files) > 1:
        (tmp_path / "data" / files[1]).unlink()
    checks = doctor.check_data()
    bad = [c for c in checks if not c.ok]
    assert bad[0].name == f"data {files[0]}" and "does not match" in bad[0].detail
    assert "build_shakespeare.py" in bad[0].fix
    if len(files) > 1:
        assert any("missing" in c.detail for c in bad)
    monkeypatch.setattr(doctor, "CHECKS", [doctor.check_data])
    assert doctor.main() == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "fix:" in out


def test_missing_package_fails_with_the_fix():
    c = doctor.check_package("surely_not_a_real_module_xyz", "1.0")
    assert not c.ok and "cannot import" in c.detail and "make lab" in c.fix
    c = doctor.check_package("numpy", "999.0")
    assert not c.ok and "need >= 999.0" in c.detail


@pytest.mark.parametrize("version, expected", [("2.13.0+cpu", (2, 13, 0)), ("8.1.9", (8, 1, 9)), ("0.23.3rc1", (0, 23, 3))])
def test_version_parsing(version, expected):
    assert doctor._version_tuple(version) == expected
