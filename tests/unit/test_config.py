"""Config: defaults, unknown keys named with the allowed ones, stable hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs.config import PipelineConfig, config_from_dict, load_config
from mmfs.errors import ConfigError


def test_defaults_need_no_file() -> None:
    cfg = load_config(None)
    assert cfg.video.fps == 1.0
    assert cfg.align.segment_s == 1.0
    assert cfg.audio.sample_rate == 16000
    assert cfg.encoders.text == "text.minilm"


def test_unknown_key_is_named_with_allowed_keys() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"video": {"fpss": 2}})
    message = str(info.value)
    assert "video.fpss" in message
    assert "fps" in message and "max_frames" in message


def test_unknown_top_level_section() -> None:
    with pytest.raises(ConfigError, match="unknown key 'vidoe'"):
        config_from_dict({"vidoe": {}})


def test_bad_value_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"video\.fps"):
        config_from_dict({"video": {"fps": -1}})


def test_yaml_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("video:\n  fps: 2.5\naudio:\n  n_mels: 40\n")
    cfg = load_config(path)
    assert cfg.video.fps == 2.5 and cfg.audio.n_mels == 40
    assert cfg.config_hash() != PipelineConfig().config_hash()
    assert cfg.config_hash() == load_config(path).config_hash()


def test_yaml_errors_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("video: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_config_is_frozen() -> None:
    cfg = PipelineConfig()
    with pytest.raises(Exception, match="frozen"):
        cfg.video.fps = 3  # type: ignore[misc]


# stage switches (README "Switching stages off"): each one validated, each one in the right versions

SWITCHES_OFF = {
    "video.audio": ({"video": {"audio": False}}, {"segments"}),
    "image.labels": ({"image": {"labels": False}}, {"frames", "segments"}),
    "image.thumbnails": ({"image": {"thumbnails": False}}, {"frames", "segments"}),
    "encoders.text": ({"encoders": {"text": None}}, {"frames", "text", "segments"}),
    "flow.enabled": ({"flow": {"enabled": False}}, {"flow", "segments"}),
    "align.segments": ({"align": {"segments": False}}, {"segments"}),
}


def test_switches_on_by_default_leave_every_version_as_it_was() -> None:
    from mmfs.stages.versions import feature_versions

    explicit = config_from_dict(
        {
            "video": {"audio": True},
            "image": {"labels": True, "thumbnails": True},
            "align": {"segments": True},
            "encoders": {"text": "text.minilm"},
        }
    )
    assert feature_versions(explicit) == feature_versions(PipelineConfig())


@pytest.mark.parametrize("name", sorted(SWITCHES_OFF))
def test_each_switch_off_changes_the_versions_of_what_it_shapes_only(name: str) -> None:
    from mmfs.stages.versions import feature_versions

    data, changed = SWITCHES_OFF[name]
    base, off = feature_versions(PipelineConfig()), feature_versions(config_from_dict(data))
    modality = {"frames", "flow", "audio", "text", "segments"}
    assert {t for t in modality if base[t] != off[t]} == changed
    assert base["media"] != off["media"]  # a failed item is retried under the new config


def test_only_the_text_encoder_may_be_off() -> None:
    assert config_from_dict({"encoders": {"text": None}}).encoders.text is None
    for modality in ("image", "audio"):
        with pytest.raises(ConfigError, match=rf"encoders\.{modality}"):
            config_from_dict({"encoders": {modality: None}})
    with pytest.raises(ConfigError, match=r"video\.audio"):
        config_from_dict({"video": {"audio": "sometimes"}})


def test_video_only_example_config_switches_everything_but_frames_off() -> None:
    cfg = load_config(Path(__file__).parents[2] / "examples" / "video_only.yaml")
    assert not cfg.video.audio and not cfg.flow.enabled and not cfg.align.segments
    assert not cfg.image.labels and not cfg.image.thumbnails and cfg.encoders.text is None
