"""The models file is checked against what each family can make, at load, one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from mutoscope.engine.families import FAMILIES
from mutoscope.engine.registry import RegistryError, load_registry


def models_file(tmp_path: Path, family: str, extra: str, weights: str | None = None) -> Path:
    weights = weights or ("builtin:tiny-ltx2" if family == "ltx2" else "builtin:tiny-wan")
    path = tmp_path / "models.toml"
    path.write_text(f'[[models]]\nname = "m"\nfamily = "{family}"\nweights = "{weights}"\n{extra}\n')
    return path


def refused(path: Path) -> str:
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    message = str(err.value)
    assert "\n" not in message and "model 'm'" in message
    return message


@pytest.mark.parametrize(("family", "extra", "words"), [
    ("ltx2", 'sizes = ["1281x720"]', "sizes: '1281x720'"),
    ("wan", 'sizes = ["720x721"]', "must be even"),
    ("ltx2", 'sizes = ["2560x1440"]', "generated at 2560x1440, beyond the 2048 px"),
    ("ltx2", 'seconds = ["24"]', "seconds: '24'"),
    ("ltx2", 'seconds = ["soon"]', "not a positive number"),
    ("wan", 'seconds = ["0"]', "not a positive number"),
    ("ltx2", 'sizes_typo = ["1280x720"]', "unknown field(s) ['sizes_typo']"),
    ("ltx2", 'attention_backend = "sage"', "attention_backend 'sage'"),
    ("ltx2", 'sizes = ["1280x720"]\ndefault_size = "720x1280"', "'default_size' must be one of the model's sizes"),
])
def test_refused_with_the_model_and_key(tmp_path, family, extra, words):
    assert words in refused(models_file(tmp_path, family, extra))


def test_two_stage_sizes_are_checked_at_their_generated_size(tmp_path):
    # 2048x1152 alone fits; two-stage generates 2 x (1024x576) = 2048x1152 too: accepted.
    extra = 'recipe = "two_stage"\nsizes = ["2048x1152"]'
    path = models_file(tmp_path, "ltx2", extra, weights="builtin:tiny-ltx2-pro")
    assert load_registry(path).resolve("m").sizes == ("2048x1152",)
    # 2040 rounds each half up (1020 -> 1024): still 2048. 2050 -> 1025 -> 1056 x 2 = 2112: refused.
    path = models_file(tmp_path, "ltx2", 'recipe = "two_stage"\nsizes = ["2050x1152"]', weights="builtin:tiny-ltx2-pro")
    assert "generated at 2112x1152" in refused(path)


def test_wan_has_no_ltx2_limits(tmp_path):
    path = models_file(tmp_path, "wan", 'sizes = ["2560x1440"]\nseconds = ["24"]')
    assert load_registry(path).resolve("m").seconds == ("24",)


def test_shipped_1080p_and_long_segments():
    registry = load_registry()
    pro = registry.resolve("sora-2-pro")
    assert {"1920x1080", "1080x1920"} <= set(pro.sizes)
    family = FAMILIES[pro.family]
    # Generated at 1088 (stage 1 at 960x544), then cropped, like 720 -> 736.
    assert family.generated_size(1920, 1080, pro.recipe) == (1920, 1088)
    assert family.generated_size(1080, 1920, pro.recipe) == (1088, 1920)
    for name in ("sora-2", "sora-2-pro"):
        assert {"16", "20"} <= set(registry.resolve(name).seconds)
        assert family.frames_covering(round(20 * 24)) == 481
    assert set(registry.resolve("wan2.2-ti2v-5b").seconds) == {"4", "5"}


def test_default_size_is_openais_unless_the_model_sets_one(tmp_path):
    registry = load_registry()
    assert registry.resolve("sora-2").info(installed=False).default_size == "720x1280"
    assert registry.resolve("tiny-ltx2").info(installed=True).default_size == "288x512"
    # A model without 720x1280 and no default_size: its first size, never one it cannot make.
    landscape = models_file(tmp_path, "ltx2", 'sizes = ["1280x720", "512x288"]')
    assert load_registry(landscape).resolve("m").info(installed=True).default_size == "1280x720"


def test_an_openai_alias_answers_openais_default_size(tmp_path):
    from mutoscope.engine.registry import default_size_for

    path = models_file(tmp_path, "ltx2", 'sizes = ["1280x720", "720x1280", "512x288"]\ndefault_size = "512x288"\n'
                                         'aliases = ["sora-2", "house-style"]')
    entry = load_registry(path).resolve("sora-2")
    # Through OpenAI's name, OpenAI's default; through its own names, the operator's default.
    assert default_size_for("sora-2", entry.sizes, entry.size_by_default) == "720x1280"
    assert default_size_for("sora-2-2025-10-06", entry.sizes, entry.size_by_default) == "720x1280"
    assert default_size_for("house-style", entry.sizes, entry.size_by_default) == "512x288"
    assert default_size_for("m", entry.sizes, entry.size_by_default) == "512x288"
    # Test fixtures keep their small default, so a suite's requests without a size stay cheap.
    assert default_size_for("sora-2", entry.sizes, "512x288", test_model=True) == "512x288"


def test_an_openai_alias_that_would_answer_outside_openais_sizes_is_refused_at_load(tmp_path):
    path = models_file(tmp_path, "ltx2", 'sizes = ["1920x1080", "512x288"]\naliases = ["sora-2-pro"]')
    message = refused(path)
    assert "'sora-2-pro'" in message and "'1920x1080'" in message and "720x1280" in message
    # A default in OpenAI's list is fine even without 720x1280.
    ok = models_file(tmp_path, "ltx2", 'sizes = ["1280x720", "512x288"]\naliases = ["sora-2"]')
    assert load_registry(ok).resolve("sora-2").name == "m"
    # Remapping an alias onto such a model is refused the same way.
    bad = models_file(tmp_path, "ltx2", 'sizes = ["512x288"]')
    with pytest.raises(RegistryError, match="'sora-2'"):
        load_registry(bad, extra_aliases={"sora-2": "m"})


UPSAMPLER_FROM = 'recipe = "two_stage"\nupsampler = {table}'


@pytest.mark.parametrize(("table", "weights", "words"), [
    ('{ repo = "Lightricks/LTX-2.3" }', "org/repo", "'upsampler.subfolder' must be"),
    ('{ repo = "not a repo", subfolder = "latent_upsampler" }', "org/repo", "'upsampler.repo' must be a hub repo id"),
    ('{ repo = "org/../up", subfolder = "latent_upsampler" }', "org/repo", "'upsampler.repo' must be"),
    ('{ repo = "org/up", subfolder = "../latent_upsampler" }', "org/repo", "'upsampler.subfolder' must be"),
    ('{ repo = "org/up", subfolder = "latent_upsampler", filename = "x.safetensors" }', "org/repo",
     "'upsampler' has unknown key(s) ['filename']"),
    ('{ repo = "org/up", subfolder = "latent_upsampler", revision = 3 }', "org/repo", "'upsampler.revision' must be"),
    ('{ repo = "org/up", subfolder = "latent_upsampler" }', "builtin:tiny-ltx2-pro", "needs hub weights"),
    ('{ repo = "org/up", subfolder = "latent_upsampler" }', "/srv/ltx", "needs hub weights"),
])
def test_an_upsampler_from_another_repo_is_checked_at_load(tmp_path, table, weights, words):
    assert words in refused(models_file(tmp_path, "ltx2", UPSAMPLER_FROM.format(table=table), weights=weights))


def test_an_upsampler_from_another_repo_is_read_into_the_entry(tmp_path):
    table = '{ repo = "org/up", subfolder = "latent_upsampler", revision = "v1.1" }'
    path = models_file(tmp_path, "ltx2", UPSAMPLER_FROM.format(table=table), weights="org/repo")
    entry = load_registry(path).resolve("m")
    assert (entry.upsampler, entry.upsampler_repo, entry.upsampler_revision) == ("latent_upsampler", "org/up", "v1.1")
    assert entry.upsampler_path == "upsampler_repo/latent_upsampler"
    # In the weights' own repo the path is the subfolder itself, as before.
    plain = load_registry(models_file(tmp_path, "ltx2", 'recipe = "two_stage"\nupsampler = "latent_upsampler"',
                                      weights="org/repo")).resolve("m")
    assert (plain.upsampler_path, plain.upsampler_repo) == ("latent_upsampler", None)
    # The two internal fields are not models-file keys.
    assert "unknown field(s) ['upsampler_repo']" in refused(
        models_file(tmp_path, "ltx2", 'recipe = "two_stage"\nupsampler_repo = "org/up"', weights="org/repo"))
