"""One error model: every public entry point of both layers, given bad input, raises an error
that is a ``CartonError`` (the same class from either package) and a ``ValueError``, with a
registered code whose category is the registry's."""

from __future__ import annotations

import asyncio
import hashlib
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from tests.helpers.cartoncraft import build, members_of

from .conftest import ORIGINAL_MODEL, pack_original


def _tampered(packed: Path, tmp_path: Path) -> Path:
    """The packed model with one self-test tensor and one misc file changed after MANIFEST was
    written (the zip itself stays well-formed: only the MANIFEST check can notice)."""
    members = members_of(packed)
    manifest = members["MANIFEST"]
    tensor = next(n for n in members if n.startswith("tensor_data/") and n.endswith(".bin"))
    members[tensor] = bytes([members[tensor][0] ^ 1]) + members[tensor][1:]
    members["misc/notes.md"] = b"other notes"
    out = tmp_path / "tampered.carton"
    out.write_bytes(build(members, manifest=manifest))
    return out


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.carton"
    path.write_bytes(b"this is not a zip archive" * 10)
    return path


def check(call: Callable[[], Any], *codes: str) -> cf.CartonError:
    with pytest.raises(cf.CartonError) as info:
        result = call()
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, carton.CartonError)
    assert err.code in cf.CODES and err.category == cf.CODES[err.code][0], err
    if codes:
        assert err.code in codes, err
    return err


def test_the_runtime_and_the_format_layer_share_one_base_class() -> None:
    assert carton.CartonError is cf.CartonError
    assert issubclass(cf.CartonFormatError, cf.CartonError) and issubclass(carton.CartonRuntimeError, cf.CartonError)
    assert issubclass(cf.CartonError, ValueError)
    assert set(carton.RUNTIME_CODES) == {c for c in cf.CODES if c.startswith("E-RUNTIME-")}
    assert all(cf.category_of(c) is not None for c in carton.RUNTIME_CODES)


def test_errors_survive_pickling_with_their_fields() -> None:
    for err in (
        cf.CartonFormatError("E-MANIFEST-MISMATCH", "differs", member="model/model.pt", key=None),
        carton.CartonRuntimeError("E-RUNTIME-INPUT", "bad dtype", name="x"),
    ):
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err) and str(copy) == str(err)
        assert (copy.code, copy.message, copy.member, copy.key, copy.category) == (err.code, err.message, err.member, err.key, err.category)
    assert pickle.loads(pickle.dumps(carton.CartonRuntimeError("E-RUNTIME-INPUT", "m", name="x"))).name == "x"


def test_format_layer_entry_points(tmp_path: Path, packed: Path) -> None:
    garbage = _garbage(tmp_path)
    check(lambda: cf.read(tmp_path / "missing.carton"), "E-IO")
    check(lambda: cf.read(garbage), "E-ZIP-NOT-ZIP")
    check(lambda: cf.read(12345), "E-ARG-INVALID")  # type: ignore[arg-type]
    check(lambda: cf.write(packed, cf.CartonInfo(runner=cf.RunnerInfo("torchscript", "=2.13", 1))), "E-OUTPUT-EXISTS")
    check(lambda: cf.write(tmp_path / "x.carton", "not an info"), "E-ARG-INVALID")  # type: ignore[arg-type]
    check(lambda: cf.shrink(garbage, tmp_path / "s.carton", {}), "E-ZIP-NOT-ZIP")
    check(lambda: cf.shrink(packed, tmp_path / "s.carton", "no"), "E-ARG-INVALID")  # type: ignore[arg-type]
    check(lambda: cf.VersionReq.parse(">=1.0, <"), "E-VERSIONREQ-INVALID")
    with cf.read(packed) as archive:
        check(lambda: archive.open("model/nothing-here"), "E-ARG-INVALID")
    assert not cf.validate(garbage).ok  # validate reports, never raises


def test_tampered_values_fail_through_every_api(tmp_path: Path, packed: Path) -> None:
    tampered = _tampered(packed, tmp_path)
    with cf.read(tampered, verify_hashes=False) as archive:
        check(lambda: archive.info.self_tests[0].inputs["a"].load(), "E-MANIFEST-MISMATCH")
        check(lambda: archive.info.misc_files["notes.md"].read(), "E-MANIFEST-MISMATCH")
    check(lambda: cf.read(tampered), "E-MANIFEST-MISMATCH")
    info = carton_sync.get_model_info(tampered)
    check(lambda: info.self_tests[0].inputs["a"].load(), "E-MANIFEST-MISMATCH")

    async def through_the_async_api() -> None:
        info = await carton.get_model_info(str(tampered))
        tensor = info.self_tests[0].inputs["a"]
        misc = info.misc_files["notes.md"]
        assert isinstance(tensor, carton.LazyLoadedTensor) and isinstance(misc, carton.LazyLoadedMiscFile)
        for awaitable in (tensor.get(), misc.read()):
            with pytest.raises(carton.CartonError) as err:
                await awaitable
            assert isinstance(err.value, ValueError) and err.value.code == "E-MANIFEST-MISMATCH"

    asyncio.run(through_the_async_api())


def test_runtime_entry_points(tmp_path: Path, packed: Path) -> None:
    garbage = _garbage(tmp_path)
    for api in (carton_sync, carton):
        check(lambda api=api: api.load(tmp_path / "missing.carton"), "E-RUNTIME-SOURCE")
        check(lambda api=api: api.load(garbage), "E-ZIP-NOT-ZIP")
        check(lambda api=api: api.load("ftp://host/model.carton"), "E-RUNTIME-SOURCE")
        check(lambda api=api: api.load(packed, visible_device="gpu:banana"), "E-RUNTIME-DEVICE")
        check(lambda api=api: api.load(packed, override_required_framework_version="=>2"), "E-VERSIONREQ-INVALID")
        check(lambda api=api: api.load(packed, override_runner_name="no-such-runner"), "E-RUNTIME-NO-RUNNER")
        check(lambda api=api: api.load(packed, override_runner_opts={"num_threads": [1]}), "E-RUNTIME-ARG")
        check(lambda api=api: api.get_model_info(garbage), "E-ZIP-NOT-ZIP")
        check(lambda api=api: api.pack(tmp_path / "missing.pt", "torchscript", "=2.13"), "E-RUNTIME-ARG")
        check(lambda api=api: api.pack(ORIGINAL_MODEL, "torchscript", "not a requirement"), "E-VERSIONREQ-INVALID")
        check(lambda api=api: api.pack(ORIGINAL_MODEL, "torchscript", "=2.13", output_path=packed), "E-OUTPUT-EXISTS")
        check(lambda api=api: api.load_unpacked(ORIGINAL_MODEL, "no-such-runner", "*"), "E-RUNTIME-NO-RUNNER")
        check(lambda api=api: api.shrink(garbage, {}), "E-ZIP-NOT-ZIP")
        check(lambda api=api: api.shrink(packed, {"ab": "not a list"}), "E-ARG-INVALID")


def test_model_entry_points(packed: Path) -> None:
    model = carton_sync.load(packed)
    check(lambda: model.infer({"a": {"not": "an array"}}), "E-RUNTIME-INPUT")
    check(lambda: model.infer({"a": np.array([b"bytes"])}), "E-RUNTIME-INPUT")
    check(lambda: model.infer_with_handle("not a handle"), "E-RUNTIME-HANDLE")  # type: ignore[arg-type]
    model.close()
    check(lambda: model.infer({}), "E-RUNTIME-CLOSED")

    async def through_the_async_api() -> None:
        async_model = await carton.load(packed)
        with pytest.raises(carton.CartonError) as err:
            await async_model.infer({"a": object()})
        assert isinstance(err.value, ValueError) and err.value.code == "E-RUNTIME-INPUT"

    asyncio.run(through_the_async_api())


def test_a_tampered_model_file_is_refused_by_load(tmp_path: Path) -> None:
    good = pack_original(tmp_path / "good.carton")
    members = members_of(good)
    manifest = members["MANIFEST"]
    model = members["model/model.pt"]
    members["model/model.pt"] = model[:-1] + bytes([model[-1] ^ 1])
    bad = tmp_path / "bad.carton"
    bad.write_bytes(build(members, manifest=manifest))
    assert f"model/model.pt={hashlib.sha256(model).hexdigest()}".encode() in manifest  # MANIFEST still names the good bytes
    for api in (carton_sync, carton):
        check(lambda api=api: api.load(bad), "E-MANIFEST-MISMATCH")


def _public_functions() -> list[tuple[str, Callable[..., Any]]]:
    import inspect

    found = {}
    for module in (cf, carton, carton_sync):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value) or inspect.iscoroutinefunction(value):
                found[f"{module.__name__}.{name}"] = value
    found["carton_format.VersionReq.parse"] = cf.VersionReq.parse
    return sorted(found.items())


BAD_VALUES = [None, 12345, "", "/nonexistent/model.carton", b"\x00\xff", object(), ["a", 1], {"k": object()}, float("nan")]


@pytest.mark.parametrize(("name", "fn"), _public_functions(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_public_function_refuses_junk_with_a_carton_error(name: str, fn: Callable[..., Any], tmp_path: Path) -> None:
    """Each required parameter filled with junk: the call either succeeds or raises a
    CartonError (and so a ValueError); never a TypeError, AttributeError or other traceback."""
    import inspect

    required = [
        p for p in inspect.signature(fn).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    for bad in BAD_VALUES + [_garbage(tmp_path)]:
        args = [bad] * len(required)
        try:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                asyncio.run(result)
        except cf.CartonError as exc:
            assert isinstance(exc, ValueError) and exc.code in cf.CODES
