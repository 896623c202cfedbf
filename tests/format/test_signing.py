"""Signed archives (spec section 18): sign and verify offline with a key and a certificate chain,
tampering, wrong keys, unsigned and detached signatures, shrink and recompression, hostile
signature members, the format layer without the extra, and the original reading signed archives."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import carton_format as cf
from carton_format._zip.append import append_member
from carton_format._zip.reader import ZipReader
from carton_format._zip.records import METHOD_ZSTD
from carton_format._zip.writer import ZipWriter
from carton_format.describe import describe_info
from carton_format.manifest import SIGNATURE_PATH
from carton_format.signature_doc import MAX_SIGNATURE_BYTES, parse_signature_document, statement_document

from ..helpers.cartoncraft import write_sample
from ..helpers.original import original_describe
from ..helpers.signing_keys import CertChain, KeyPair, make_cert_chain, make_key_pair

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_key_pair(tmp_path_factory.mktemp("keys"), "signer")


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_key_pair(tmp_path_factory.mktemp("other-keys"), "other")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> CertChain:
    return make_cert_chain(tmp_path_factory.mktemp("chain"))


def sample(tmp_path: Path, name: str = "model.carton", payload: bytes = b"weights " * 4096) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return write_sample(tmp_path, name, model_files={"model.pt": payload})


def signature_of(path: Path) -> bytes:
    with cf.read(path, verify_hashes=False) as archive:
        return cf.sources.read_member(archive.source, SIGNATURE_PATH, MAX_SIGNATURE_BYTES)


def codes(report: cf.SignatureReport) -> list[str]:
    return [r.code for r in report.reasons]


def data_span(path: Path, member: str) -> tuple[int, int]:
    with ZipReader.open_path(path) as z:
        return z.data_span(member)


# -- sign and verify -----------------------------------------------------------------------------


@pytest.mark.spec("FMT-SIG-1", "FMT-SIG-2", "FMT-SIG-4", "FMT-SIG-5", "FMT-SIG-7")
def test_sign_and_verify_with_a_key(tmp_path: Path, keys: KeyPair) -> None:
    path = sample(tmp_path)
    result = cf.sign(path, key=keys.private)
    assert result.signature_location == "member SIGNATURE" and result.method == "key"
    with cf.read(path) as archive:  # read() accepts the unlisted SIGNATURE member
        model_id = archive.manifest_sha256
        assert SIGNATURE_PATH not in archive.manifest
        assert archive.source.member(SIGNATURE_PATH).method == "stored"
    assert result.model_id == model_id
    assert cf.validate(path).ok
    report = cf.verify_signature(path, key=keys.public)
    assert report.verified, report.reasons
    assert (report.model_id, report.spec_version, report.method, report.deep) == (model_id, 1, "key", True)
    assert report.signer == {"kind": "key", "public_key_sha256": hashlib.sha256(keys.public.read_bytes()).hexdigest()}
    document = signature_of(path)
    assert document.endswith(b"\n") and document.count(b"\n") == 1
    doc = json.loads(document)
    assert doc["version"] == 1 and json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n" == document
    statement = json.loads(base64.b64decode(doc["bundle"]["dsseEnvelope"]["payload"]))
    assert statement == statement_document(model_id, 1)
    assert statement["subject"][0]["digest"]["sha256"] == hashlib.sha256(cf.read(path).manifest_info.raw).hexdigest()


@pytest.mark.spec("FMT-SIG-4", "FMT-SIG-7")
def test_sign_and_verify_with_a_certificate_chain(tmp_path: Path, chain: CertChain, keys: KeyPair) -> None:
    path = sample(tmp_path)
    cf.sign(path, key=chain.key, cert=chain.cert, chain=[chain.ca])
    document = parse_signature_document(signature_of(path))
    assert document.signer == {"kind": "certificate", "certificates": 2}
    report = cf.verify_signature(path, chain=chain.ca)
    assert report.verified and report.method == "certificate", report.reasons
    other = make_cert_chain(tmp_path / "other-ca", "intruder")
    assert codes(cf.verify_signature(path, chain=other.ca)) == ["E-SIGNATURE-UNVERIFIED"]
    # the key of a certificate signature is not a trusted key by itself: its bundle holds no key hint
    assert codes(cf.verify_signature(path, key=keys.public)) == ["E-SIGNATURE-UNVERIFIED"]


def test_a_certificate_that_does_not_match_the_key_is_refused(tmp_path: Path, chain: CertChain, keys: KeyPair) -> None:
    path = sample(tmp_path)
    with pytest.raises(cf.CartonFormatError) as err:
        cf.sign(path, key=keys.private, cert=chain.cert, chain=chain.ca)
    assert err.value.code == "E-ARG-INVALID"
    assert cf.read(path).source.member(SIGNATURE_PATH) is None


@pytest.mark.spec("FMT-SIG-8")
def test_signing_appends_without_rewriting_member_data(tmp_path: Path, keys: KeyPair) -> None:
    path = sample(tmp_path)
    before = path.read_bytes()
    with ZipReader.open_path(path) as z:
        cd_offset = z.cd_offset
        names = z.names()
    cf.sign(path, key=keys.private)
    after = path.read_bytes()
    assert after[:cd_offset] == before[:cd_offset]  # every member's bytes where they were
    with ZipReader.open_path(path) as z:
        assert z.names() == [*names, SIGNATURE_PATH]  # the last member
        assert z.entries[-1].header_offset == cd_offset
        z.check_layout()
    # signing again replaces the last member; RFC 6979 signatures: the same bytes
    cf.sign(path, key=keys.private)
    assert path.read_bytes() == after
    twin = sample(tmp_path / "twin")
    cf.sign(twin, key=keys.private)
    assert twin.read_bytes() == after  # deterministic archive, deterministic signature


def test_signing_a_copy_leaves_the_source_alone(tmp_path: Path, keys: KeyPair) -> None:
    path = sample(tmp_path)
    before = path.read_bytes()
    out = tmp_path / "signed.carton"
    cf.sign(path, key=keys.private, output=out)
    assert path.read_bytes() == before
    assert cf.verify_signature(out, key=keys.public).verified
    with pytest.raises(cf.CartonFormatError) as err:
        cf.sign(path, key=keys.private, output=out)
    assert err.value.code == "E-OUTPUT-EXISTS"


def test_an_unpacked_directory_is_signed_in_place(tmp_path: Path, keys: KeyPair) -> None:
    import zipfile

    path = sample(tmp_path)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as z:
        z.extractall(unpacked)
    cf.sign(unpacked, key=keys.private)
    assert (unpacked / SIGNATURE_PATH).is_file()
    assert cf.validate(unpacked).ok
    assert cf.verify_signature(unpacked, key=keys.public).verified


# -- what does not verify --------------------------------------------------------------------------


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.spec("FMT-SIG-7")
def test_a_flipped_byte_in_a_member_fails_the_deep_check(tmp_path: Path, keys: KeyPair) -> None:
    path = sample(tmp_path)
    cf.sign(path, key=keys.private)
    start, _end = data_span(path, "model/model.pt")
    flip(path, start + 100)
    assert cf.verify_signature(path, key=keys.public, deep=False).verified  # the signature alone still holds...
    report = cf.verify_signature(path, key=keys.public)  # ...but the archive is not what was signed
    assert not report.verified
    assert set(codes(report)) & {"E-MANIFEST-MISMATCH", "E-ZIP-CRC"}


@pytest.mark.spec("FMT-SIG-6")
def test_a_changed_manifest_is_not_verified(tmp_path: Path, keys: KeyPair) -> None:
    path = sample(tmp_path)
    cf.sign(path, key=keys.private)
    start, _end = data_span(path, "MANIFEST")
    flip(path, start)  # "carton.toml=" -> "bartoN..." : MANIFEST's CRC and the model id change
    report = cf.verify_signature(path, key=keys.public)
    assert not report.verified and report.reasons[0].code.startswith(("E-ZIP-", "E-MANIFEST-", "E-SIGNATURE-"))


@pytest.mark.spec("FMT-SIG-6")
def test_a_signature_of_another_manifest_does_not_apply(tmp_path: Path, keys: KeyPair) -> None:
    signed = sample(tmp_path / "a", payload=b"model A")
    cf.sign(signed, key=keys.private)
    other = sample(tmp_path / "b", payload=b"model B")
    append_member(other, SIGNATURE_PATH, signature_of(signed))
    report = cf.validate(other)
    assert [f.code for f in report.errors] == ["E-SIGNATURE-MISMATCH"]
    assert codes(cf.verify_signature(other, key=keys.public)) == ["E-SIGNATURE-MISMATCH"]


@pytest.mark.spec("FMT-SIG-7")
def test_a_tampered_bundle_is_not_verified(tmp_path: Path, keys: KeyPair) -> None:
    """The payload of archive B's signature swapped for a statement about archive A: the form
    and the subject are right, the signature is not."""
    a = sample(tmp_path / "a", payload=b"model A")
    b = sample(tmp_path / "b", payload=b"model B")
    cf.sign(b, key=keys.private)
    doc = json.loads(signature_of(b))
    model_a = cf.read(a).manifest_sha256
    forged = json.dumps(statement_document(model_a, 1), sort_keys=True, separators=(",", ":")).encode()
    doc["bundle"]["dsseEnvelope"]["payload"] = base64.b64encode(forged).decode()
    append_member(a, SIGNATURE_PATH, json.dumps(doc).encode())
    assert cf.validate(a).ok  # well formed, and names this model: only a key can tell
    assert codes(cf.verify_signature(a, key=keys.public)) == ["E-SIGNATURE-UNVERIFIED"]
    # a flipped byte in the signature itself
    cf.sign(a, key=keys.private)
    doc = json.loads(signature_of(a))
    sig = bytearray(base64.b64decode(doc["bundle"]["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 0x01
    doc["bundle"]["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    append_member(a, SIGNATURE_PATH, json.dumps(doc).encode())
    assert codes(cf.verify_signature(a, key=keys.public)) == ["E-SIGNATURE-UNVERIFIED"]


@pytest.mark.spec("FMT-SIG-7")
def test_the_wrong_key_is_not_trusted(tmp_path: Path, keys: KeyPair, other_keys: KeyPair) -> None:
    path = sample(tmp_path)
    cf.sign(path, key=other_keys.private)
    report = cf.verify_signature(path, key=keys.public)
    assert codes(report) == ["E-SIGNATURE-UNVERIFIED"] and not report.verified
    assert "Key mismatch" in report.reasons[0].message


@pytest.mark.spec("FMT-SIG-7")
def test_an_unsigned_archive_is_not_verified(tmp_path: Path, keys: KeyPair) -> None:
    path = sample(tmp_path)
    report = cf.verify_signature(path, key=keys.public)
    assert codes(report) == ["E-SIGNATURE-MISSING"] and report.signature_location is None


def test_bad_arguments(tmp_path: Path, keys: KeyPair) -> None:
    path = sample(tmp_path)
    for kwargs in ({}, {"key": keys.public, "chain": keys.public}, {"identity": "me@example.com"}, {"key": tmp_path / "nope.pem"}):
        with pytest.raises(cf.CartonFormatError) as err:
            cf.verify_signature(path, **kwargs)
        assert err.value.code == "E-ARG-INVALID"
    for kwargs in ({}, {"key": keys.private, "sigstore": True}, {"key": keys.public}, {"key": keys.private, "chain": [keys.public]}):
        with pytest.raises(cf.CartonFormatError) as err:
            cf.sign(path, **kwargs)
        assert err.value.code == "E-ARG-INVALID", kwargs
    with pytest.raises(cf.CartonFormatError) as err:
        cf.verify_signature(tmp_path / "missing.carton", key=keys.public)
    assert err.value.code == "E-ARG-INVALID"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    for bad in (rsa_key, make_key_pair(tmp_path / "k256k1", "k", ec.SECP256K1()).private, keys.public, tmp_path / "rsa.pem"):
        with pytest.raises(cf.CartonFormatError) as err:
            cf.sign(path, key=bad)
        assert err.value.code == "E-ARG-INVALID", bad


# -- detached, shrink, recompression ----------------------------------------------------------------


@pytest.mark.spec("FMT-SIG-1", "FMT-SIG-7")
def test_detached_signature(tmp_path: Path, keys: KeyPair, other_keys: KeyPair) -> None:
    path = sample(tmp_path)
    before = path.read_bytes()
    result = cf.sign(path, key=keys.private, detached=True)
    sig = Path(result.signature_location)
    assert sig == tmp_path / "model.carton.sig" and path.read_bytes() == before
    report = cf.verify_signature(path, key=keys.public)  # found beside the archive
    assert report.verified and report.signature_location == str(sig)
    moved = tmp_path / "elsewhere.sig"
    sig.rename(moved)
    assert codes(cf.verify_signature(path, key=keys.public)) == ["E-SIGNATURE-MISSING"]
    assert cf.verify_signature(path, key=keys.public, signature=moved).verified
    assert codes(cf.verify_signature(path, key=other_keys.public, signature=moved)) == ["E-SIGNATURE-UNVERIFIED"]


@pytest.mark.spec("FMT-SIG-8", "FMT-MANIFEST-11")
def test_the_signature_survives_shrink_and_recompression(tmp_path: Path, keys: KeyPair) -> None:
    payload = b"large weights " * 10000
    path = sample(tmp_path, payload=payload)
    cf.sign(path, key=keys.private)
    shrunk = tmp_path / "shrunk.carton"
    cf.shrink(path, shrunk, {hashlib.sha256(payload).hexdigest(): ["https://example.com/model.pt"]})
    assert cf.read(shrunk, verify_hashes=False).source.member("model/model.pt") is None
    assert signature_of(shrunk) == signature_of(path)
    report = cf.verify_signature(shrunk, key=keys.public)
    assert report.verified, report.reasons
    assert [w.code for w in report.warnings] == ["W-HASHES-NOT-VERIFIED"]  # the linked file was not fetched
    # recompressed with zstd, MANIFEST and SIGNATURE copied byte for byte
    recompressed = tmp_path / "zstd.carton"
    with cf.read(path) as archive, open(recompressed, "wb") as f:
        writer = ZipWriter(f)
        for member in archive.source.members():
            with archive.source.open(member.name) as stream:
                method = 0 if member.name in ("MANIFEST", SIGNATURE_PATH) else METHOD_ZSTD
                writer.add_stream(member.name, stream, method=method, size_hint=member.size)
        writer.close()
    assert recompressed.read_bytes() != path.read_bytes()
    assert cf.verify_signature(recompressed, key=keys.public).verified


# -- hostile signature members ------------------------------------------------------------------------


def _doc(tmp_path: Path, keys: KeyPair) -> dict:
    path = sample(tmp_path / "good")
    cf.sign(path, key=keys.private)
    return json.loads(signature_of(path))


def _with(doc: dict, path: list[str | int], value: object) -> bytes:
    out = json.loads(json.dumps(doc))
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(out).encode()


def _statement(doc: dict, change: dict) -> bytes:
    statement = json.loads(base64.b64decode(doc["bundle"]["dsseEnvelope"]["payload"]))
    statement.update(change)
    return _with(doc, ["bundle", "dsseEnvelope", "payload"], base64.b64encode(json.dumps(statement).encode()).decode())


HOSTILE = {
    "not-json": (lambda d: b"{not json", "E-SIGNATURE-INVALID"),
    "not-utf8": (lambda d: b'{"version": 1, "bundle": "\xff"}', "E-SIGNATURE-INVALID"),
    "deep-nesting": (lambda d: b"[" * 200_000 + b"]" * 200_000, "E-SIGNATURE-INVALID"),
    "array": (lambda d: b"[1, 2]", "E-SIGNATURE-INVALID"),
    "duplicate-key": (lambda d: b'{"version": 1, "version": 1, "bundle": {}}', "E-SIGNATURE-INVALID"),
    "nan": (lambda d: b'{"version": NaN}', "E-SIGNATURE-INVALID"),
    "version-2": (lambda d: _with(d, ["version"], 2), "E-SIGNATURE-VERSION"),
    "version-string": (lambda d: _with(d, ["version"], "1"), "E-SIGNATURE-INVALID"),
    "version-true": (lambda d: _with(d, ["version"], True), "E-SIGNATURE-INVALID"),
    "no-bundle": (lambda d: _with(d, ["bundle"], KeyError), "E-SIGNATURE-INVALID"),
    "media-type": (lambda d: _with(d, ["bundle", "mediaType"], "application/json"), "E-SIGNATURE-INVALID"),
    "no-material": (lambda d: _with(d, ["bundle", "verificationMaterial"], {}), "E-SIGNATURE-INVALID"),
    "two-signatures": (lambda d: _with(d, ["bundle", "dsseEnvelope", "signatures"], d["bundle"]["dsseEnvelope"]["signatures"] * 2),
                       "E-SIGNATURE-INVALID"),
    "payload-not-base64": (lambda d: _with(d, ["bundle", "dsseEnvelope", "payload"], "%%%"), "E-SIGNATURE-INVALID"),
    "payload-not-json": (lambda d: _with(d, ["bundle", "dsseEnvelope", "payload"], base64.b64encode(b"\x00\x01").decode()),
                         "E-SIGNATURE-INVALID"),
    "payload-type": (lambda d: _with(d, ["bundle", "dsseEnvelope", "payloadType"], "text/plain"), "E-SIGNATURE-INVALID"),
    "predicate-type": (lambda d: _statement(d, {"predicateType": "https://model_signing/signature/v1.0"}), "E-SIGNATURE-INVALID"),
    "two-subjects": (lambda d: _statement(d, {"subject": [{"name": "MANIFEST", "digest": {"sha256": "a" * 64}}] * 2}),
                     "E-SIGNATURE-INVALID"),
    "subject-name": (lambda d: _statement(d, {"subject": [{"name": "model.pt", "digest": {"sha256": "a" * 64}}]}), "E-SIGNATURE-INVALID"),
    "spec-version-2": (lambda d: _statement(d, {"predicate": {"format": "carton", "spec_version": 2}}), "E-SIGNATURE-MISMATCH"),
    "huge": (lambda d: b" " * (MAX_SIGNATURE_BYTES + 1), "E-LIMIT-MEMBER-SIZE"),
}


@pytest.mark.spec("FMT-SIG-1", "FMT-SIG-2", "FMT-SIG-3", "FMT-SIG-4", "FMT-SIG-5")
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_signature_members_get_coded_errors(tmp_path: Path, keys: KeyPair, case: str) -> None:
    make, code = HOSTILE[case]
    data = make(_doc(tmp_path, keys))
    path = sample(tmp_path / "victim")
    append_member(path, SIGNATURE_PATH, data)
    with cf.read(path) as archive:  # a reader that does not check signatures ignores the member
        assert archive.manifest_sha256
    tracemalloc.start()
    try:
        report = cf.validate(path)
        verified = cf.verify_signature(path, key=keys.public)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [f.code for f in report.errors] == [code]
    assert codes(verified) == [code] and not verified.verified
    assert peak < 16 * MAX_SIGNATURE_BYTES  # bounded by the member's limit, not by what it claims
    detached = tmp_path / "victim.sig"
    detached.write_bytes(data)
    assert codes(cf.verify_signature(sample(tmp_path / "plain"), key=keys.public, signature=detached)) == [code]


def test_a_signature_member_that_is_not_last_is_not_replaced(tmp_path: Path, keys: KeyPair) -> None:
    """A SIGNATURE in the middle (not written by us) cannot be replaced in place: refused, the
    archive unchanged."""
    path = sample(tmp_path)
    append_member(path, SIGNATURE_PATH, b"{}")
    append_member(path, "LINKS", b"version = 1\n[urls]\n")
    before = path.read_bytes()
    with pytest.raises(cf.CartonFormatError) as err:
        cf.sign(path, key=keys.private)
    assert err.value.code == "E-ARG-INVALID" and path.read_bytes() == before


# -- without the extra, and the original ------------------------------------------------------------


def test_the_format_layer_works_without_the_extra(tmp_path: Path, keys: KeyPair) -> None:
    path = sample(tmp_path)
    cf.sign(path, key=keys.private)
    code = f"""
import sys
for name in ("model_signing", "sigstore", "sigstore_models", "OpenSSL"):
    sys.modules[name] = None  # as if the signing extra were not installed
import carton_format as cf
assert cf.validate({str(path)!r}).ok
assert cf.read({str(path)!r}).manifest_sha256
report = cf.verify_signature({str(path)!r}, key={str(keys.public)!r})
print(",".join(r.code for r in report.reasons))
try:
    cf.sign({str(path)!r}, key={str(keys.private)!r})
except cf.CartonFormatError as exc:
    print(exc.code)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["E-SIGNATURE-UNAVAILABLE", "E-SIGNATURE-UNAVAILABLE"]


@pytest.mark.interop
@pytest.mark.spec("FMT-SIG-1")
def test_the_original_reads_signed_archives(tmp_path: Path, keys: KeyPair, chain: CertChain) -> None:
    by_key = sample(tmp_path / "key")
    cf.sign(by_key, key=keys.private)
    by_cert = sample(tmp_path / "cert")
    cf.sign(by_cert, key=chain.key, cert=chain.cert, chain=[chain.ca])
    for path, theirs in zip((by_key, by_cert), original_describe(by_key, by_cert)):
        assert "error" not in theirs, theirs
        with cf.read(path) as archive:
            assert theirs == describe_info(archive.info, with_values=True)
