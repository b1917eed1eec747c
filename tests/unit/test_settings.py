"""Settings: defaults, then VENVSERVE_* variables (converted to each field's type), then flags."""

from pathlib import Path

from venvserve.settings import Settings


def test_environment_values_take_the_fields_types_and_flags_win(monkeypatch, tmp_path):
    monkeypatch.setenv("VENVSERVE_MAX_QUEUE", "3")
    monkeypatch.setenv("VENVSERVE_STOP_GRACE_S", "1.5")
    monkeypatch.setenv("VENVSERVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VENVSERVE_API_KEY", "secret")
    monkeypatch.setenv("VENVSERVE_PORT", "9001")
    settings = Settings.load(port=9002)
    assert settings.max_queue == 3 and isinstance(settings.max_queue, int)
    assert settings.stop_grace_s == 1.5 and isinstance(settings.stop_grace_s, float)
    assert settings.data_dir == tmp_path / "data" and isinstance(settings.data_dir, Path)
    assert settings.api_key == "secret"
    assert settings.port == 9002


def test_defaults_bind_loopback_and_find_envs_beside_the_catalog(tmp_path):
    settings = Settings.load(catalog=tmp_path / "models.json")
    assert settings.host == "127.0.0.1"
    assert settings.templates_dir == tmp_path / "envs"
