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


def test_a_bad_setting_names_its_variable_and_never_prints_a_key(monkeypatch, tmp_path):
    import pytest

    from venvserve.settings import SettingsError

    monkeypatch.setenv("VENVSERVE_WORKER_TRANSPORT", "tcpp")
    with pytest.raises(SettingsError, match=r"VENVSERVE_WORKER_TRANSPORT: .*'unix' or 'tcp' \(got 'tcpp'\)"):
        Settings.load()
    monkeypatch.delenv("VENVSERVE_WORKER_TRANSPORT")
    with pytest.raises(SettingsError) as caught:
        Settings.load(api_key="SECRET123", admin_key_file=tmp_path / "missing")
    assert "admin_key_file" in str(caught.value) and "SECRET123" not in str(caught.value)


def test_keys_come_from_files(tmp_path):
    (tmp_path / "key").write_text("from-a-file\n")
    assert Settings.load(api_key_file=tmp_path / "key").api_key == "from-a-file"
