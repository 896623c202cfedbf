"""``carton sign`` and ``carton verify``: exit codes (0 / 1 / 2), --json, --help, detached."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from carton_format.cli import main

from ..helpers.cartoncraft import write_sample
from ..helpers.signing_keys import KeyPair, make_cert_chain, make_key_pair

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_key_pair(tmp_path_factory.mktemp("cli-keys"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.spec("FMT-SIG-7")
def test_sign_then_verify(tmp_path: Path, keys: KeyPair, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write_sample(tmp_path))
    code, out, _ = run(capsys, "sign", path, "--key", str(keys.private))
    assert code == 0 and "signed model" in out and "member SIGNATURE" in out
    code, out, _ = run(capsys, "verify", path, "--key", str(keys.public))
    assert code == 0 and "VERIFIED" in out and "every member" in out
    code, out, _ = run(capsys, "verify", path, "--key", str(keys.public), "--json")
    report = json.loads(out)
    assert code == 0 and report["verified"] is True and report["method"] == "key" and report["reasons"] == []
    code, out, _ = run(capsys, "verify", path, "--key", str(keys.public), "--signature-only", "--json")
    assert code == 0 and json.loads(out)["deep"] is False
    code, out, _ = run(capsys, "validate", path)
    assert code == 0


def test_not_verified_is_exit_1(tmp_path: Path, keys: KeyPair, capsys: pytest.CaptureFixture[str]) -> None:
    unsigned = str(write_sample(tmp_path))
    code, out, _ = run(capsys, "verify", unsigned, "--key", str(keys.public))
    assert code == 1 and "E-SIGNATURE-MISSING" in out and "NOT VERIFIED" in out
    code, out, _ = run(capsys, "verify", unsigned, "--key", str(keys.public), "--json")
    report = json.loads(out)
    assert code == 1 and report["verified"] is False and report["reasons"][0]["code"] == "E-SIGNATURE-MISSING"
    assert report["reasons"][0]["category"] == "signature"
    other = make_key_pair(tmp_path / "other", "other")
    run(capsys, "sign", unsigned, "--key", str(other.private))
    code, out, _ = run(capsys, "verify", unsigned, "--key", str(keys.public), "--json")
    assert code == 1 and json.loads(out)["reasons"][0]["code"] == "E-SIGNATURE-UNVERIFIED"


def test_usage_errors_are_exit_2(tmp_path: Path, keys: KeyPair, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write_sample(tmp_path))
    for argv in (
        ["verify", path],
        ["verify", path, "--key", str(keys.public), "--chain", str(keys.public)],
        ["verify", path, "--identity", "me@example.com"],
        ["verify", path, "--key", str(tmp_path / "missing.pem")],
        ["sign", path],
        ["sign", path, "--key", str(keys.private), "--sigstore"],
        ["sign", path, "--key", str(keys.private), "--chain", str(keys.public)],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert "error:" in err
    with pytest.raises(SystemExit) as exc:  # argparse: an unknown option
        main(["verify", path, "--no-such-option"])
    assert exc.value.code == 2


def test_a_failed_sign_is_exit_1_with_a_coded_error(tmp_path: Path, keys: KeyPair, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_carton = tmp_path / "x.carton"
    not_a_carton.write_bytes(b"not a zip")
    code, out, _ = run(capsys, "sign", str(not_a_carton), "--key", str(keys.private), "--json")
    answer = json.loads(out)
    assert code == 1 and answer["signed"] is False and answer["error"]["code"] == "E-ZIP-NOT-ZIP"
    code, _, err = run(capsys, "sign", str(write_sample(tmp_path)), "--key", str(keys.public))  # a public key cannot sign
    assert code == 1 and "E-ARG-INVALID" in err


def test_detached_and_certificate_signatures(tmp_path: Path, keys: KeyPair, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_sample(tmp_path)
    before = path.read_bytes()
    code, out, _ = run(capsys, "sign", str(path), "--key", str(keys.private), "--detached", "--json")
    assert code == 0 and json.loads(out)["signature_location"] == f"{path}.sig" and path.read_bytes() == before
    assert run(capsys, "verify", str(path), "--key", str(keys.public))[0] == 0
    chain = make_cert_chain(tmp_path / "pki")
    signed = tmp_path / "signed.carton"
    code, _, err = run(capsys, "sign", str(path), "--key", str(chain.key), "--cert", str(chain.cert), "--chain", str(chain.ca), "-o", str(signed))
    assert code == 0, err
    code, out, _ = run(capsys, "verify", str(signed), "--chain", str(chain.ca), "--json")
    assert code == 0 and json.loads(out)["method"] == "certificate"


def test_help_and_the_installed_command(tmp_path: Path) -> None:
    for command in ("sign", "verify"):
        proc = subprocess.run([sys.executable, "-m", "carton_format.cli", command, "--help"], capture_output=True, text=True,
                              cwd=ROOT, timeout=60)
        assert proc.returncode == 0 and "Exit 0" in proc.stdout and "--json" in proc.stdout
