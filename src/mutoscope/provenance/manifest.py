"""C2PA: sign an MP4 with a manifest saying how it was made, and read a manifest back."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import c2pa

from mutoscope.provenance.keys import ALG, SigningIdentity

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ASSERTION = "org.mutoscope.video"  # our custom assertion label (reverse-DNS, as C2PA asks)
# How a source video relates to the new one: a remix re-generates from the source's settings
# (an input); an extension or edit changes the source's own frames (its parent).
RELATIONSHIP = {"remix": "inputTo", "extend": "parentOf", "edit": "parentOf"}

_E = c2pa.C2paError
_BROKEN_MANIFEST = (_E.Verify, _E.Signature, _E.Assertion, _E.AssertionNotFound, _E.Manifest, _E.Decoding)

C2paState = Literal["trusted", "valid", "tampered", "absent"]


@dataclass
class ManifestInfo:
    """What the manifest says. Ids of cameos and grants go in hashed, never in clear."""

    video_id: str | None
    model: str
    generator: str = "Mutoscope"
    generator_version: str = ""
    created_at: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))
    source_video_id: str | None = None
    source_kind: str | None = None  # remix | extend | edit
    source_path: Path | None = None  # the source MP4, carried as an ingredient when given
    cameo_ids: list[str] = field(default_factory=list)
    grant_ids: list[str] = field(default_factory=list)
    # The model that really made it, behind the public name in `model`: {"name", "weights", "revision"}.
    generated_by: dict[str, Any] | None = None


def _hashed(ids: list[str]) -> list[str]:
    return ["sha256:" + hashlib.sha256(i.encode()).hexdigest() for i in ids]


def manifest_json(info: ManifestInfo) -> dict[str, Any]:
    agent = {"name": info.generator, "version": info.generator_version}
    custom: dict[str, Any] = {"video_id": info.video_id, "model": info.model,
                              "cameo_ids": _hashed(info.cameo_ids), "grant_ids": _hashed(info.grant_ids)}
    if info.source_video_id:
        custom["source_video_id"], custom["source_kind"] = info.source_video_id, info.source_kind
    parameters: dict[str, Any] = {"model": info.model}
    if info.generated_by:
        custom["generated_by"] = dict(info.generated_by)
        # The created action names the checkpoint (weights and revision) as well as the name it was asked by.
        parameters.update({f"model_{k}": v for k, v in info.generated_by.items() if v is not None})
    return {
        "claim_generator_info": [agent],
        "title": f"{info.video_id or 'video'}.mp4",
        "format": "video/mp4",
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA, "softwareAgent": agent,
                "when": info.created_at.isoformat(), "parameters": parameters}]}},
            {"label": ASSERTION, "data": custom},
        ],
    }


def sign_mp4(path: Path, identity: SigningIdentity, info: ManifestInfo) -> None:
    """Embed a signed manifest into the MP4 at `path` (atomically replaced)."""
    builder = c2pa.Builder(manifest_json(info))
    try:
        if info.source_path is not None and info.source_path.exists():
            rel = RELATIONSHIP.get(info.source_kind or "", "inputTo")
            with open(info.source_path, "rb") as src:
                builder.add_ingredient({"title": f"{info.source_video_id}.mp4", "relationship": rel},
                                       "video/mp4", src)
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(ALG.encode(), identity.chain_pem, identity.key_pem, None))
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.c2pa")
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                builder.sign(signer, "video/mp4", src, dst)
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
            signer.close()
    finally:
        builder.close()


@dataclass
class C2paReport:
    state: C2paState
    signer: str | None = None  # the certificate's common name
    issuer: str | None = None
    generator: str | None = None
    digital_source_type: str | None = None
    created_at: str | None = None
    video_id: str | None = None
    model: str | None = None
    generated_by: dict[str, Any] | None = None
    source_video_id: str | None = None
    ingredients: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # C2PA validation status codes


def read_manifest(path: Path, trust_pem: bytes | None) -> C2paReport:
    """The C2PA state of `path`: trusted (valid and chains to our anchors), valid, tampered or absent."""
    settings = {"verify": {"verify_trust": True}}
    if trust_pem:
        settings["trust"] = {"trust_anchors": trust_pem.decode()}
    context = c2pa.Context(settings=c2pa.Settings.from_dict(settings))
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create("video/mp4", f, context=context)
            if reader is None:
                return C2paReport(state="absent")
            with reader:
                state = reader.get_validation_state()
                results = reader.get_validation_results() or {}
                store = json.loads(reader.json())
    except _BROKEN_MANIFEST as e:
        # A manifest box that no longer parses (bytes changed inside it) is tampering too.
        return C2paReport(state="tampered", failures=[type(e).__name__.lstrip("_")])
    except c2pa.C2paError:
        # Not a container the library can read (junk, another format): nothing we can call a manifest.
        return C2paReport(state="absent")
    finally:
        context.close()
    active = (store.get("manifests") or {}).get(store.get("active_manifest") or "", {})
    failures = [f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", [])]
    # "Valid": intact, signer not among our anchors; "Invalid": a hash, the signature or the
    # credential does not check out (the codes say which), which we report as tampered.
    out_state: C2paState = {"Trusted": "trusted", "Valid": "valid"}.get(state or "", "tampered")
    report = C2paReport(state=out_state, failures=failures)
    sig = active.get("signature_info") or {}
    report.signer, report.issuer = sig.get("common_name"), sig.get("issuer")
    gen = (active.get("claim_generator_info") or [{}])[0]
    report.generator = " ".join(x for x in (gen.get("name"), gen.get("version")) if x) or None
    for a in active.get("assertions", []):
        if a.get("label", "").startswith("c2pa.actions"):
            for act in a.get("data", {}).get("actions", []):
                if act.get("action") == "c2pa.created":
                    report.digital_source_type = act.get("digitalSourceType")
                    report.created_at = act.get("when")
        elif a.get("label") == ASSERTION:
            data = a.get("data", {})
            report.video_id, report.model = data.get("video_id"), data.get("model")
            made = data.get("generated_by")
            report.generated_by = {k: made.get(k) for k in ("name", "weights", "revision")} \
                if isinstance(made, dict) else None
            report.source_video_id = data.get("source_video_id")
    report.ingredients = [i.get("title", "") for i in active.get("ingredients", [])]
    return report

